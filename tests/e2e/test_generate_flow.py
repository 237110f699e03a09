"""The main path in a real browser: sign in, generate, watch the card poll to completion, see the gallery.

Set ATELIER_SCREENSHOT=1 to also write docs/screenshot.png (the create page with a finished task).
"""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

from generator.models import Task
from tests.cluster import wait_for_final
from tests.factories import PASSWORD, UserFactory

from .conftest import BASE_DIR, marker_survives, set_marker, sign_in, wait_for_loaded_images

pytestmark = pytest.mark.browser

PROMPT = "Fox in a snowy birch forest at first light, gouache illustration"
SCREENSHOT = BASE_DIR / "docs" / "screenshot.png"


@pytest.mark.cluster
def test_sign_in_generate_and_find_the_images_in_the_gallery(page, live_server, start_qcluster):
    # The real worker, slow enough (1 s per task) that the card is seen polling before it completes.
    start_qcluster(OFFLINE_DELAY_SECONDS=1)
    user = UserFactory(username="ada")
    card_polls: list[str] = []
    page.on("request", lambda request: "/card" in request.url and card_polls.append(request.url))

    sign_in(page, live_server, user, PASSWORD)
    expect(page.locator("#no-tasks")).to_be_visible()
    set_marker(page)

    page.get_by_label("Prompt", exact=True).fill(PROMPT)
    page.get_by_label("Images").select_option("4")
    page.get_by_role("button", name="Generate").click()

    card = page.locator("#task-list .task-card")
    expect(card).to_have_count(1)
    first_status = card.get_attribute("data-status")
    assert first_status in ("pending", "processing"), first_status
    task = Task.objects.get(owner=user)
    assert (task.prompt, task.num_images) == (PROMPT, 4)
    card = page.locator(f"#task-{task.pk}")
    expect(card.locator(".prompt")).to_have_text(PROMPT)
    expect(page.locator("#no-tasks")).to_have_count(0)

    expect(card).to_have_attribute("data-status", "completed", timeout=30_000)
    expect(card.locator(".badge-completed")).to_have_text("Completed")
    assert card_polls, "the card should have polled its URL while the task was running"
    assert marker_survives(page), "the page navigated or reloaded instead of updating in place"
    widths = wait_for_loaded_images(page, f"#task-{task.pk} .thumbs img", 4)
    assert all(width > 0 for width in widths)
    assert wait_for_final(task, timeout=5).status == Task.Status.COMPLETED
    assert page.errors == []

    if os.environ.get("ATELIER_SCREENSHOT") == "1":
        page.mouse.move(0, 0)
        page.evaluate("() => window.scrollTo(0, 0)")
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT))

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Gallery").click()
    expect(page).to_have_url(f"{live_server.url}/gallery/")
    expect(page.get_by_role("heading", name="Gallery")).to_be_visible()
    gallery_images = page.locator(".gallery img")
    expect(gallery_images).to_have_count(4)
    expect(gallery_images.first).to_have_attribute("alt", PROMPT)
    assert all(width > 0 for width in wait_for_loaded_images(page, ".gallery img", 4))
    assert page.errors == []


def test_empty_prompt_shows_the_error_in_place_and_creates_nothing(page, live_server):
    user = UserFactory()
    sign_in(page, live_server, user, PASSWORD)
    set_marker(page)

    errors = page.locator("#prompt-errors")
    expect(errors).to_have_count(0)
    _submit_and_wait_for_new_form(page)
    expect(errors).to_have_text("Describe the picture you want.")
    expect(errors).to_have_attribute("role", "alert")

    # Only spaces is empty too; the swapped-in form still submits through htmx.
    page.get_by_label("Prompt", exact=True).fill("   ")
    _submit_and_wait_for_new_form(page)
    expect(errors).to_have_text("Describe the picture you want.")
    assert marker_survives(page), "the error should appear without a page load"
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.locator("#task-list .task-card")).to_have_count(0)
    expect(page.locator("#no-tasks")).to_be_visible()
    assert not Task.objects.filter(owner=user).exists()
    assert page.errors == []


def _submit_and_wait_for_new_form(page) -> None:
    """Press Generate and wait until htmx has swapped in the server's re-rendered form."""
    page.eval_on_selector("#generate-form", "form => { form.dataset.submitted = 'yes'; }")
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#generate-form")).to_have_count(1)
    expect(page.locator("#generate-form[data-submitted]")).to_have_count(0)
    # htmx wires up swapped-in content only when it settles (20 ms later, when it drops the
    # htmx-added class); a click before that would be a native submit and a page load.
    expect(page.locator("#generate-form.htmx-added")).to_have_count(0)
