"""The web half: which requests are measured, checked once, then loaded in a fair order.

Each app endpoint is compared with one baseline view: the gallery pages with the baseline's
48-item template, the poll, the API and the thumbnail with its small JSON view. Baselines are
measured right before and after the app endpoints they serve as yardstick for, and the whole
sequence is repeated in rounds: each round gives each endpoint a ratio against the mean of
its two bracketing baseline runs, and the run's ratio is the median over the rounds. A shared
machine that slows down or speeds up for a while then moves both sides of a ratio alike.

Every app endpoint is a signed-in request, while the yardsticks serve anyone. Beside each,
its signed-in copy (stock Django also reading the session and the user) is measured in the
same rounds: its own ratio to the anonymous view is the most a signed-in request doing that
work can score, and each app endpoint is also given as a ratio to it (`ratio_signed_in`, a
context figure, not one of the issue's ratios).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from .load import LoadResult, LoadSettings, run_wrk
from .servers import fetch


@dataclass(frozen=True)
class Endpoint:
    key: str
    path: str
    headers: dict[str, str]
    expect: bytes  # a response that does not contain this is not the page we meant to load


def app_endpoints(seed: dict) -> dict[str, Endpoint]:
    # Production sits behind a TLS proxy that sends X-Forwarded-Proto; without it DEBUG=false
    # redirects every request to https.
    browser = {"Cookie": f"sessionid={seed['session_key']}", "X-Forwarded-Proto": "https"}
    deep = urlencode({"after": seed["deep_cursor"]})
    filtered = urlencode({"tag": seed["filter_tag"]})
    endpoints = [
        Endpoint("gallery_first_page", "/gallery/", browser, b'class="gallery-item"'),
        Endpoint("gallery_deep_page", f"/gallery/?{deep}", browser, b'class="gallery-item"'),
        Endpoint("gallery_filtered", f"/gallery/?{filtered}", browser, b'class="gallery-item"'),
        Endpoint("explore_first_page", "/explore/?sort=popular", browser, b'class="gallery-item explore-item"'),
        Endpoint(
            "task_poll",
            f"/tasks/{seed['poll_task_id']}/card",
            {**browser, "HX-Request": "true", "HX-Current-URL": "https://127.0.0.1/"},
            b'class="task-card',
        ),
        Endpoint("thumbnail", f"/api/v1/images/{seed['thumbnail_image_id']}/thumbnail", browser, b"WEBP"),
        Endpoint(
            "api_task",
            f"/api/v1/task/{seed['api_task_id']}",
            {"Authorization": f"Bearer {seed['api_token']}", "X-Forwarded-Proto": "https"},
            b'"status": "completed"',
        ),
    ]
    return {endpoint.key: endpoint for endpoint in endpoints}


BASELINE_TEMPLATE = Endpoint("baseline_template", "/items/", {"X-Forwarded-Proto": "https"}, b'id="item-47"')
BASELINE_JSON = Endpoint("baseline_json", "/json/", {"X-Forwarded-Proto": "https"}, b'"status": "completed"')


def baseline_endpoints(signed_in_session_key: str) -> dict[str, Endpoint]:
    signed_in = {"Cookie": f"sessionid={signed_in_session_key}", "X-Forwarded-Proto": "https"}
    endpoints = [
        BASELINE_TEMPLATE,
        BASELINE_JSON,
        Endpoint("baseline_template_signed_in", "/signed-in/items/", signed_in, b'id="item-47"'),
        Endpoint("baseline_json_signed_in", "/signed-in/json/", signed_in, b'"user": "baseline"'),
    ]
    return {endpoint.key: endpoint for endpoint in endpoints}


# What each app endpoint is compared with.
YARDSTICK = {
    "gallery_first_page": "baseline_template",
    "gallery_deep_page": "baseline_template",
    "gallery_filtered": "baseline_template",
    "explore_first_page": "baseline_template",
    "task_poll": "baseline_json",
    "api_task": "baseline_json",
    "thumbnail": "baseline_json",
}
# Context figures beside the targets: each signed-in baseline against its anonymous original
# (the ceiling for a signed-in request doing that work), and the app endpoints against it.
SIGNED_IN_YARDSTICK = {
    "baseline_template_signed_in": "baseline_template",
    "gallery_first_page": "baseline_template_signed_in",
    "gallery_deep_page": "baseline_template_signed_in",
    "gallery_filtered": "baseline_template_signed_in",
    "explore_first_page": "baseline_template_signed_in",
    "baseline_json_signed_in": "baseline_json",
    "task_poll": "baseline_json_signed_in",
    "api_task": "baseline_json_signed_in",
    "thumbnail": "baseline_json_signed_in",
}
# The order of the runs: each baseline brackets the endpoints measured against it.
ORDER = [
    "baseline_template",
    "baseline_template_signed_in",
    "gallery_first_page",
    "gallery_deep_page",
    "gallery_filtered",
    "explore_first_page",
    "baseline_template_signed_in",
    "baseline_template",
    "baseline_json",
    "baseline_json_signed_in",
    "task_poll",
    "api_task",
    "thumbnail",
    "baseline_json_signed_in",
    "baseline_json",
]


def check(base_url: str, endpoint: Endpoint) -> None:
    """One request before the load: a 200 with the expected content, or the run is wrong."""
    status, body = fetch(base_url + endpoint.path, endpoint.headers)
    if status != 200 or endpoint.expect not in body:
        raise RuntimeError(
            f"{endpoint.key}: {base_url + endpoint.path} answered {status}, not the expected page:\n{body[:500]!r}"
        )


def measure(
    app_url: str,
    baseline_url: str,
    seed: dict,
    baseline_session_key: str,
    load: LoadSettings,
    warmup: int,
    rounds: int,
    script: Path,
    log,
) -> dict:
    """Every endpoint checked, warmed up, then loaded in ORDER, `rounds` times; each key's runs in order."""
    endpoints = {**app_endpoints(seed), **baseline_endpoints(baseline_session_key)}
    url_of = {key: (baseline_url if key.startswith("baseline") else app_url) for key in endpoints}
    for key, endpoint in endpoints.items():
        check(url_of[key], endpoint)
        run_wrk(url_of[key] + endpoint.path, endpoint.headers, load, script, seconds=warmup)
    runs: dict[str, list[LoadResult]] = {}
    for key in ORDER * rounds:
        endpoint = endpoints[key]
        result = run_wrk(url_of[key] + endpoint.path, endpoint.headers, load, script)
        runs.setdefault(key, []).append(result)
        log(
            f"  {key:<20} {result.requests_per_second:9.1f} req/s  p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms"
            + ("" if result.valid else f"  INVALID: {result.not_200} not 200, {result.socket_errors} socket errors")
        )
    return runs
