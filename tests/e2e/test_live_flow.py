"""Press Generate → first image visible: through the event stream, and by polling when it is blocked.

The real worker (a qcluster subprocess) runs each task with the offline provider, which takes
OFFLINE_DELAY_SECONDS; it signals changes through the file cache this process shares with it
(CACHE_DIR). The page is served by pytest-django's live_server, a threaded WSGI server: there
the stream runs as a plain iterator in its request's thread (generator/views/events.py), the
same events as gunicorn's ASGI workers send (tests/test_live.py covers that path, and the
benchmark measures time-to-visible through the real ASGI server).

Timing happens in the browser: performance.now() at the click on Generate and at the first
thumbnail's load event. The task's own duration is what the server records: created_at →
finished_at (waiting for a worker, then running). What is left is the page's share: the create
request before the task exists, and getting the finished card and its picture on screen.
"""

from __future__ import annotations

import statistics

import pytest
from django.conf import settings
from playwright.sync_api import expect

from generator.models import Task
from generator.services import TaskSettings, create_task
from tests.cluster import wait_for_final
from tests.factories import PASSWORD, UserFactory

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.cluster]

DELAY = 0.5
RUNS = 5
# The budget beyond the task's own duration.
BUDGET = 0.150
# On top of it, for this shared 2-core machine (four other test runs at once): single runs of
# the same path measured 0.10–0.24 s; the median of RUNS is checked.
TOLERANCE = 0.100

TIMING = """() => {
    window.__clickedAt = null; window.__visibleAt = null;
    const button = document.querySelector('#generate-form button[type=submit]');
    button.addEventListener('click', () => { window.__clickedAt = performance.now(); }, {capture: true, once: true});
    document.addEventListener('load', (event) => {
        if (window.__visibleAt === null && event.target.matches && event.target.matches('#task-list .thumbs img')) {
            window.__visibleAt = performance.now();
        }
    }, true);
}"""


def shared_cache_env() -> dict[str, str]:
    """The worker signals through this process's cache (file cache: the same folder)."""
    location = settings.CACHES["default"].get("LOCATION")
    if settings.CACHES["default"]["BACKEND"].endswith("FileBasedCache"):
        return {"CACHE_DIR": str(location)}
    return {}


def generate_and_time(page, user) -> tuple[float, float]:
    """Seconds from the click to the first image loaded, and the task's own duration: from the
    moment Atelier accepted it (created_at) to its end (finished_at), queue wait included."""
    page.evaluate(TIMING)
    page.get_by_label("Prompt", exact=True).fill("Lighthouse at dawn, watercolour")
    page.get_by_label("Images").select_option("1")
    before = set(Task.objects.filter(owner=user).values_list("pk", flat=True))
    page.get_by_role("button", name="Generate").click()
    page.wait_for_function("() => window.__visibleAt !== null", timeout=15_000)
    elapsed = page.evaluate("() => (window.__visibleAt - window.__clickedAt) / 1000")
    clicked, visible = page.evaluate(
        "() => [performance.timeOrigin + window.__clickedAt, performance.timeOrigin + window.__visibleAt]"
    )
    (task,) = Task.objects.filter(owner=user).exclude(pk__in=before)
    task = wait_for_final(task, timeout=5)
    assert task.status == Task.Status.COMPLETED
    # Where the time went (same machine, same clock): shown with -s.
    print(
        f"  click→created {task.created_at.timestamp() - clicked / 1000:.3f}"
        f" created→started {(task.started_at - task.created_at).total_seconds():.3f}"
        f" started→finished {task.duration.total_seconds():.3f}"
        f" finished→visible {visible / 1000 - task.finished_at.timestamp():.3f}"
    )
    expect(page.locator(f"#task-{task.pk}")).to_have_attribute("data-status", "completed")
    return elapsed, (task.finished_at - task.created_at).total_seconds()


def polls(requests: list) -> list:
    """The cards' own htmx polls (htmx names the element in HX-Trigger; live.js's fetches do not)."""
    return [r for r in requests if "/card" in r.url and r.headers.get("hx-trigger", "").startswith("task-")]


def test_with_the_stream_the_image_shows_within_the_tasks_duration_and_150_ms(page, live_server, start_qcluster):
    start_qcluster(OFFLINE_DELAY_SECONDS=DELAY, **shared_cache_env())
    user = UserFactory()
    requests: list = []
    page.on("request", lambda request: requests.append(request))
    sign_in(page, live_server, user, PASSWORD)
    expect(page.locator("html")).to_have_attribute("data-live", "on")

    timings = [generate_and_time(page, user) for _ in range(RUNS)]
    overheads = [elapsed - duration for elapsed, duration in timings]
    print(f"\nstream: click→visible {[f'{e:.3f}' for e, _ in timings]} s; task {[f'{d:.3f}' for _, d in timings]} s")
    assert statistics.median(overheads) <= BUDGET + TOLERANCE, timings
    assert polls(requests) == [], "the cards polled although the stream was up"
    assert page.errors == []


def test_with_the_stream_blocked_the_cards_poll_and_the_image_still_shows(page, live_server, start_qcluster):
    start_qcluster(OFFLINE_DELAY_SECONDS=DELAY, **shared_cache_env())
    user = UserFactory()
    requests: list = []
    page.on("request", lambda request: requests.append(request))
    page.route("**/tasks/events", lambda route: route.abort())
    sign_in(page, live_server, user, PASSWORD)

    timings = [generate_and_time(page, user) for _ in range(RUNS)]
    print(f"\nblocked: click→visible {[f'{e:.3f}' for e, _ in timings]} s; task {[f'{d:.3f}' for _, d in timings]} s")
    assert page.locator("html").get_attribute("data-live") != "on"
    assert polls(requests), "with the stream blocked the cards should have polled"
    # The fallback is the polling as before: a poll every second, so within about a second more.
    assert statistics.median(e - d for e, d in timings) <= 1.0 + BUDGET + TOLERANCE + 0.3, timings


def _create(user, prompt: str) -> Task:
    return create_task(user, TaskSettings(prompt=prompt, provider="offline", model="sketch-v1", width=256, height=256))


def test_history_rows_and_the_gallery_update_from_the_stream(page, live_server, start_qcluster):
    start_qcluster(OFFLINE_DELAY_SECONDS=1, **shared_cache_env())
    user = UserFactory()
    requests: list = []
    page.on("request", lambda request: requests.append(request))
    first = wait_for_final(_create(user, "First light over the harbour"), timeout=20)
    assert first.status == Task.Status.COMPLETED
    sign_in(page, live_server, user, PASSWORD)

    # A running task's history row turns completed without polling.
    running = _create(user, "Second light over the harbour")
    page.goto(live_server.url + "/history/")
    expect(page.locator("html")).to_have_attribute("data-live", "on")
    row = page.locator(f"#task-row-{running.pk}")
    expect(row).to_have_attribute("data-status", "completed", timeout=15_000)
    assert [r for r in requests if "row=" in r.url and r.headers.get("hx-trigger")] == []

    # On the gallery's first page a finished task's picture joins the top.
    page.goto(live_server.url + "/gallery/")
    expect(page.locator("html")).to_have_attribute("data-live", "on")
    expect(page.locator("#gallery-grid .gallery-item")).to_have_count(2)
    third = _create(user, "Third light over the harbour")
    expect(page.locator("#gallery-grid .gallery-item")).to_have_count(3, timeout=15_000)
    assert wait_for_final(third, timeout=5).status == Task.Status.COMPLETED
    expect(page.locator("#gallery-grid .gallery-item").first).to_have_id(f"image-{third.images.get().pk}")
    assert page.errors == []
