"""Stop in a real browser: a task on a WebUI double (tests/fake_webui.py) run by a real qcluster
shows its progress rising and the picture so far; Stop ends it canceled, the WebUI receives
/sdapi/v1/interrupt, and no image is kept.

Set ATELIER_SCREENSHOT=1 to also write docs/screenshot-progress.png (the card while generating).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from generator.models import Image, Task
from tests.cluster import wait_for_final
from tests.factories import PASSWORD, UserFactory
from tests.fake_webui import serving

from .conftest import BASE_DIR, sign_in, wait_for_loaded_images

pytestmark = pytest.mark.browser

PROMPT = "A paper lantern festival over a river at dusk"
SCREENSHOT = BASE_DIR / "docs" / "screenshot-progress.png"


@pytest.mark.cluster
def test_stop_a_generating_webui_task(page, live_server, start_qcluster, configure_provider, media_root, settings):
    with serving() as webui:
        webui.step_seconds = 0.15  # 80 steps: about 12 s unless stopped
        configure_provider("automatic1111", BASE_URL=webui.url, STEPS=80)  # what the page offers
        start_qcluster(
            AUTOMATIC1111_BASE_URL=webui.url,
            AUTOMATIC1111_STEPS=80,
            AUTOMATIC1111_PROGRESS_SECONDS=0.3,
            # The worker writes previews where the web server reads them: the shared cache.
            CACHE_DIR=settings.CACHES["default"]["LOCATION"],
        )
        user = UserFactory()
        sign_in(page, live_server, user, PASSWORD)
        page.get_by_label("Prompt", exact=True).fill(PROMPT)
        page.get_by_label("Provider and model").select_option("automatic1111:default")
        page.get_by_role("button", name="Generate").click()

        expect(page.locator("#task-list .task-card")).to_have_count(1)
        task = Task.objects.get(owner=user)
        card = page.locator(f"#task-{task.pk}")
        expect(card).to_have_attribute("data-status", "processing", timeout=20_000)

        # The bar follows the WebUI's sampling steps, as the card refreshes itself.
        values = _progress_values(card, until=40, timeout=20.0)
        assert len(set(values)) >= 3 and values == sorted(values), values
        expect(card.locator(".task-percent")).to_be_visible()
        expect(card.locator("time.task-elapsed")).to_have_text(_clock())
        assert wait_for_loaded_images(page, f"#task-{task.pk} img.task-preview", 1)[0] > 0
        if os.environ.get("ATELIER_SCREENSHOT") == "1":
            card.screenshot(path=str(SCREENSHOT))

        card.get_by_role("button", name="Stop").click()
        expect(card).to_have_attribute("data-status", "canceled", timeout=5_000)
        expect(card.locator(".badge-canceled")).to_have_text("Canceled")
        expect(card.get_by_role("button", name="Stop")).to_have_count(0)

        assert wait_for_final(task, timeout=5).status == Task.Status.CANCELED
        job = webui.calls[0]["force_task_id"]
        _wait(lambda: webui.snapshot()["answered"], timeout=15)
        seen = webui.snapshot()
        assert seen["interrupts"] == [job]
        assert seen["answered"][0]["interrupted"] and seen["answered"][0]["steps"] < 80
        time.sleep(1.0)  # the worker has the (discarded) answer by now
        final = Task.objects.get(pk=task.pk)
        assert final.status == Task.Status.CANCELED and not Image.objects.filter(task=final).exists()
        assert [path for path in Path(media_root).rglob("*") if path.is_file()] == []
        assert page.errors == []


def _progress_values(card, *, until: int, timeout: float) -> list[int]:
    """The bar's value as the card refreshes, until it reaches `until`."""
    values: list[int] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = card.locator("progress").get_attribute("value")
        if value is not None and (not values or int(value) != values[-1]):
            values.append(int(value))
        if values and values[-1] >= until:
            return values
        time.sleep(0.2)
    raise AssertionError(f"progress never reached {until}: {values}")


def _clock():
    import re

    return re.compile(r"^\d+:\d\d$")


def _wait(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.05)
