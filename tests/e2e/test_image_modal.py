"""The image modal in real Chromium: open from the gallery, tag and favourite inside it,
Escape and focus, delete from it; the tag page's steps without a page of JavaScript."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from generator.models import Image, Tag, Task
from generator.scheduler.inline import run_task
from tests.factories import PASSWORD, TagFactory, TaskFactory, UserFactory

from .conftest import marker_survives, set_marker, sign_in, wait_for_loaded_images

pytestmark = pytest.mark.browser

ACTIVE_IN_DIALOG = "() => document.getElementById('image-modal').contains(document.activeElement)"


def make_images(user, count: int = 2) -> list[Image]:
    """Real tasks run through the offline provider, so real files exist; newest first."""
    images = []
    for n in range(count):
        task = TaskFactory(owner=user, prompt=f"A red fox under birches, study {n}", seed=100 + n)
        run_task(str(task.pk))
        assert Task.objects.get(pk=task.pk).status == Task.Status.COMPLETED
        images += list(Image.objects.filter(task=task))
    return images[::-1]


def thumbnail_link(page, image: Image):
    return page.locator(f'a[data-modal][href="/images/{image.pk}/"]')


def test_the_modal_opens_tags_favourites_and_gives_focus_back(page, live_server):
    user = UserFactory()
    _newest, older = make_images(user)
    TagFactory(owner=user, name="Harbour lights")
    sign_in(page, live_server, user, PASSWORD)
    page.goto(f"{live_server.url}/gallery/")
    set_marker(page)

    link = thumbnail_link(page, older)
    link.click()
    dialog = page.locator("#image-modal")
    expect(dialog).to_be_visible()
    assert page.evaluate("() => document.getElementById('image-modal').matches(':modal')")
    expect(dialog.locator(".image-figure img")).to_have_attribute("src", older.url)
    assert wait_for_loaded_images(page, "#image-modal .image-figure img", 1)[0] == older.width
    expect(dialog.locator(".image-seed")).to_have_text(str(older.seed))
    assert page.evaluate(ACTIVE_IN_DIALOG), "focus should move into the dialog"

    # Tab and Shift+Tab stay inside the modal dialog.
    for key in ["Tab"] * 30 + ["Shift+Tab"] * 30:
        page.keyboard.press(key)
        assert page.evaluate(ACTIVE_IN_DIALOG), f"{key} left the dialog"

    # Tag it: the suggestion list offers my tag; the chip appears without a reload.
    field = dialog.get_by_label("Add a tag")
    field.focus()
    expect(dialog.locator("datalist option")).to_have_count(1)
    expect(dialog.locator("datalist option")).to_have_attribute("value", "Harbour lights")
    field.fill("  harbour   LIGHTS ")
    field.press("Enter")
    expect(dialog.locator(".chip a")).to_have_text(["Harbour lights"])
    expect(dialog.get_by_label("Add a tag")).to_be_focused()
    dialog.get_by_label("Add a tag").fill("dusk")
    dialog.get_by_role("button", name="Add", exact=True).click()
    expect(dialog.locator(".chip a")).to_have_text(["dusk", "Harbour lights"])
    assert set(older.tags.values_list("name", flat=True)) == {"dusk", "Harbour lights"}
    assert Tag.objects.filter(owner=user).count() == 2

    # A bad name: the message in place, nothing added.
    dialog.get_by_label("Add a tag").fill("x" * 51)
    dialog.get_by_label("Add a tag").press("Enter")
    expect(dialog.get_by_role("alert")).to_have_text("Keep tag names to 50 characters or fewer.")
    expect(dialog.locator(".chip")).to_have_count(2)

    # Remove a chip: the tag stays, focus stays in the dialog.
    dialog.get_by_role("button", name="Remove tag dusk").click()
    expect(dialog.locator(".chip a")).to_have_text(["Harbour lights"])
    assert Tag.objects.filter(owner=user, name="dusk").exists()
    assert page.evaluate(ACTIVE_IN_DIALOG)

    # Favourite toggles in place; the button keeps focus.
    favourite = dialog.get_by_role("button", name="Favourite")
    expect(favourite).to_have_attribute("aria-pressed", "false")
    favourite.click()
    expect(dialog.get_by_role("button", name="Favourite")).to_have_attribute("aria-pressed", "true")
    expect(dialog.get_by_role("button", name="Favourite")).to_be_focused()
    assert Image.objects.get(pk=older.pk).is_favorite
    page.keyboard.press("Enter")
    expect(dialog.get_by_role("button", name="Favourite")).to_have_attribute("aria-pressed", "false")
    assert not Image.objects.get(pk=older.pk).is_favorite

    # Escape closes it and focus returns to the thumbnail that opened it.
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(link).to_be_focused()
    assert marker_survives(page), "everything above should have happened without a page load"

    # The keyboard opens it too; the Close button closes it.
    page.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".chip a")).to_have_text(["Harbour lights"])
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()
    expect(link).to_be_focused()
    assert page.errors == []


def test_ctrl_click_still_opens_the_page(page, live_server):
    user = UserFactory()
    (image,) = make_images(user, 1)
    sign_in(page, live_server, user, PASSWORD)
    page.goto(f"{live_server.url}/gallery/")
    with page.context.expect_page() as opened:
        thumbnail_link(page, image).click(modifiers=["ControlOrMeta"])
    new_page = opened.value
    new_page.wait_for_load_state()
    assert new_page.url == f"{live_server.url}/images/{image.pk}/"
    expect(new_page.get_by_role("heading", level=1)).to_have_text(image.task.prompt)
    expect(page.locator("#image-modal")).to_be_hidden()
    assert page.errors == []


def test_delete_from_the_modal_asks_then_takes_the_image_out_of_the_grid(page, live_server):
    user = UserFactory()
    newest, older = make_images(user)
    sign_in(page, live_server, user, PASSWORD)
    page.goto(f"{live_server.url}/gallery/")
    set_marker(page)
    thumbnail_link(page, newest).click()
    dialog = page.locator("#image-modal")
    expect(dialog).to_be_visible()

    dialog.get_by_role("link", name="Delete…").click()
    expect(dialog.get_by_role("heading", name="Delete this image?")).to_be_visible()
    dialog.get_by_role("link", name="Cancel, keep it").click()  # changing one's mind
    expect(dialog.get_by_role("button", name="Favourite")).to_be_visible()
    assert Image.objects.filter(pk=newest.pk).exists()

    dialog.get_by_role("link", name="Delete…").click()
    dialog.get_by_role("button", name="Delete image").click()
    expect(dialog).to_be_hidden()
    expect(thumbnail_link(page, newest)).to_have_count(0)
    expect(thumbnail_link(page, older)).to_be_focused()
    assert not Image.objects.filter(pk=newest.pk).exists()
    assert Image.objects.filter(pk=older.pk).exists()
    assert marker_survives(page)
    assert page.errors == []
