"""The steady half of the web phase: each endpoint and its yardstick called in-process.

wrk through gunicorn measures what a client sees, but on a shared 2-core machine the server's
threads and wrk's compete for the cores, and the same code scored 0.40 / 0.59 / 0.44 in three
runs. Here each side runs in its own process (`python -m bench.inprocess serve`: the app under
config.settings, the baseline under bench.baseline.settings), called through Django's WSGI
handler in one thread: the full middleware, session, user and view, no socket. The
orchestrator interleaves them A/B/A/B in small batches, so a slow spell of the machine falls
on both sides alike, and each round's ratio is the yardstick's median time over the
endpoint's median time (a throughput ratio, as wrk's). The run's ratio is the median over
the rounds, and the spread of the rounds ((max - min) / median) is reported beside it: more
than 15 % says the machine was too noisy for the figure to guide tuning.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from .web import SIGNED_IN_YARDSTICK, YARDSTICK, Endpoint, app_endpoints, baseline_endpoints
from .workdir import BASE_DIR, PYTHON, WorkDir

SPREAD_LIMIT = 0.15
# Every app endpoint against the signed-in copy of its yardstick: the ratios the targets use.
PAIRS = {key: SIGNED_IN_YARDSTICK[key] for key in YARDSTICK}


@dataclass(frozen=True)
class Settings:
    rounds: int  # each gives one ratio per endpoint
    alternations: int  # A/B batches per endpoint in a round
    batch: int  # requests in a batch


class Side:
    """One `serve` child: send it a request description, get back its timings."""

    def __init__(self, name: str, env: dict[str, str]) -> None:
        self.name = name
        self.process = subprocess.Popen(
            [PYTHON, "-m", "bench.inprocess", "serve"],
            cwd=BASE_DIR,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def call(self, endpoint: Endpoint, count: int) -> list[float]:
        assert self.process.stdin and self.process.stdout
        request = {
            "path": endpoint.path,
            "headers": endpoint.headers,
            "count": count,
            "expect": endpoint.expect.decode(),
        }
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"in-process {self.name} server exited with {self.process.wait()}")
        answer = json.loads(line)
        if answer.get("error"):
            raise RuntimeError(f"in-process {endpoint.key}: {answer['error']}")
        return answer["seconds"]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()  # type: ignore[union-attr]
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def measure(
    workdir: WorkDir,
    seed: dict,
    baseline_session_key: str,
    settings: Settings,
    log,
    keys: tuple[str, ...] | None = None,
) -> dict:
    """Per app endpoint (those in `keys`, or all): per-round ratios against its signed-in
    yardstick, their median and spread, and both sides' median milliseconds."""
    pairs = PAIRS if keys is None else {key: PAIRS[key] for key in keys}
    app_side = Side("app", workdir.app_env())
    baseline_side = Side(
        "baseline",
        workdir.app_env(
            DJANGO_SETTINGS_MODULE="bench.baseline.settings", BASELINE_DATABASE=str(workdir.baseline_database)
        ),
    )
    endpoints = {**app_endpoints(seed), **baseline_endpoints(baseline_session_key)}
    try:
        for key in pairs:  # warm up: templates compiled, caches filled, on both sides
            app_side.call(endpoints[key], settings.batch)
            baseline_side.call(endpoints[pairs[key]], settings.batch)
        rounds: dict[str, list[tuple[float, float]]] = {key: [] for key in pairs}
        for _ in range(settings.rounds):
            for key, yardstick in pairs.items():
                app_times: list[float] = []
                yardstick_times: list[float] = []
                for _ in range(settings.alternations):
                    yardstick_times += baseline_side.call(endpoints[yardstick], settings.batch)
                    app_times += app_side.call(endpoints[key], settings.batch)
                rounds[key].append((statistics.median(app_times), statistics.median(yardstick_times)))
    finally:
        app_side.close()
        baseline_side.close()
    results = {key: summarize(pairs[key], measured) for key, measured in rounds.items()}
    for key, row in results.items():
        log(
            f"  in-process {key:<20} {row['ms']:7.3f} ms  {row['yardstick']:<28} {row['yardstick_ms']:7.3f} ms  "
            f"ratio {row['ratio']:.3f}  spread {row['spread']:.0%}" + ("  NOISY" if row["noisy"] else "")
        )
    return results


def summarize(yardstick: str, rounds: list[tuple[float, float]]) -> dict:
    ratios = [yardstick_seconds / app_seconds for app_seconds, yardstick_seconds in rounds]
    ratio = statistics.median(ratios)
    spread = (max(ratios) - min(ratios)) / ratio
    return {
        "yardstick": yardstick,
        "ms": round(statistics.median(app for app, _ in rounds) * 1000, 3),
        "yardstick_ms": round(statistics.median(base for _, base in rounds) * 1000, 3),
        "round_ratios": [round(r, 3) for r in ratios],
        "ratio": round(ratio, 3),
        "spread": round(spread, 3),
        "noisy": spread > SPREAD_LIMIT,
    }


def environ_for(path: str, headers: dict[str, str]) -> dict:
    from django.test import RequestFactory

    url = urlsplit(path)
    extra = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}
    extra.update(HTTP_HOST="127.0.0.1", SERVER_NAME="127.0.0.1", SERVER_PORT="80")
    return RequestFactory()._base_environ(PATH_INFO=url.path, QUERY_STRING=url.query, REQUEST_METHOD="GET", **extra)


def serve() -> None:
    """The child: requests from stdin, one JSON line of timings each to stdout."""
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler

    handler = WSGIHandler()
    statuses: list[str] = []

    def start_response(status: str, headers: list, exc_info=None) -> None:
        statuses.append(status)

    for line in sys.stdin:
        request = json.loads(line)
        expect = request["expect"].encode()
        seconds, error = [], None
        for _ in range(request["count"]):
            environ = environ_for(request["path"], request["headers"])
            statuses.clear()
            started = time.perf_counter()
            response = handler(environ, start_response)
            body = b"".join(response)
            response.close()
            seconds.append(time.perf_counter() - started)
            if not statuses[0].startswith("200") or expect not in body:
                error = f"{request['path']} answered {statuses[0]}, not the expected page: {body[:300]!r}"
                break
        sys.stdout.write(json.dumps({"seconds": seconds, "error": error}) + "\n")
        sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["serve"])
    parser.parse_args()
    serve()


if __name__ == "__main__":
    main()
