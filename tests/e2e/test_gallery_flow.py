"""The gallery in a real browser: infinite scroll, a filter, selection, bulk delete and the zip."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from generator.models import Image, Task
from tests.factories import PASSWORD, ImageFactory, UserFactory

from .conftest import marker_survives, set_marker, sign_in, wait_for_loaded_images

pytestmark = pytest.mark.browser


def open_gallery(page, live_server, user) -> None:
    sign_in(page, live_server, user, PASSWORD)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Gallery").click()
    expect(page.get_by_role("heading", name="Gallery")).to_be_visible()


def test_scrolling_to_the_end_loads_the_older_images(page, live_server):
    user = UserFactory()
    ImageFactory.bulk_create_batch(60, owner=user, files=True)  # a page of 48, then 12
    open_gallery(page, live_server, user)
    items = page.locator("#gallery-grid .gallery-item")
    expect(items).to_have_count(48)
    set_marker(page)
    page.locator(".gallery-more").scroll_into_view_if_needed()
    expect(items).to_have_count(60)
    expect(page.locator(".gallery-more")).to_have_count(0)
    ids = page.eval_on_selector_all('#gallery-grid input[name="image"]', "boxes => boxes.map(b => b.value)")
    assert len(set(ids)) == 60
    assert marker_survives(page), "the next page should be added in place"
    assert page.errors == []


def test_a_filter_narrows_the_grid(page, live_server):
    user = UserFactory()
    ImageFactory.bulk_create_batch(5, owner=user, files=True, task__prompt="a harbour at dusk")
    foxes = ImageFactory.bulk_create_batch(3, owner=user, files=True, task__prompt="A red fox in the snow")
    open_gallery(page, live_server, user)
    expect(page.locator("#gallery-grid .gallery-item")).to_have_count(8)
    page.get_by_label("Search prompts").fill("FOX")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(f"{live_server.url}/gallery/?q=FOX")
    expect(page.locator("#gallery-grid .gallery-item")).to_have_count(3)
    wait_for_loaded_images(page, "#gallery-grid img", 3)
    for image in foxes:
        expect(page.locator(f"#image-{image.pk}")).to_be_visible()
    page.get_by_label("Search prompts").fill("unicorn")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_text("No images match these filters")).to_be_visible()
    page.locator(".empty").get_by_role("link", name="Clear filters").click()
    expect(page.locator("#gallery-grid .gallery-item")).to_have_count(8)
    assert page.errors == []


def test_shift_click_selects_a_range_and_select_all_the_page(page, live_server):
    user = UserFactory()
    ImageFactory.bulk_create_batch(6, owner=user, files=True)
    open_gallery(page, live_server, user)
    boxes = page.get_by_label("Select image")
    expect(boxes).to_have_count(6)
    boxes.nth(1).click()
    boxes.nth(4).click(modifiers=["Shift"])
    checked = page.eval_on_selector_all('#gallery-grid input[name="image"]', "boxes => boxes.map(b => b.checked)")
    assert checked == [False, True, True, True, True, False]
    expect(page.locator("#selection-count")).to_have_text("4 images selected")
    page.get_by_role("button", name="Select all on this page").click()
    expect(page.locator("#selection-count")).to_have_text("6 images selected")
    page.get_by_role("button", name="Clear selection").click()
    expect(page.locator("#selection-count")).to_have_text("None selected")
    assert page.errors == []


def test_bulk_delete_asks_then_removes_the_rows_and_files(page, live_server):
    user = UserFactory()
    images = ImageFactory.bulk_create_batch(4, owner=user, files=True)
    doomed = images[1:3]
    files = [Path(image.file.path) for image in doomed] + [Path(image.thumbnail.path) for image in doomed]
    assert all(path.is_file() for path in files)
    open_gallery(page, live_server, user)
    for image in doomed:
        page.locator(f"#image-{image.pk}").get_by_label("Select image").check()

    # The question comes in a styled dialog; Cancel, or Escape, changes nothing.
    set_marker(page)
    ask = page.get_by_role("dialog", name="Delete 2 images? Their files are removed for good.")
    page.get_by_role("button", name="Delete…").click()
    expect(ask).to_be_visible()
    expect(ask.get_by_role("button", name="Cancel")).to_be_focused()
    ask.get_by_role("button", name="Cancel").click()
    expect(ask).to_be_hidden()
    expect(page.get_by_role("button", name="Delete…")).to_be_focused()
    page.get_by_role("button", name="Delete…").click()
    page.keyboard.press("Escape")
    expect(ask).to_be_hidden()
    expect(page.locator("#gallery-grid .gallery-item")).to_have_count(4)
    assert Image.objects.filter(owner=user).count() == 4

    page.get_by_role("button", name="Delete…").click()
    ask.get_by_role("button", name="Delete 2 images").click()
    expect(page.get_by_text("Deleted 2 images.")).to_be_visible()
    expect(page.locator("#gallery-grid .gallery-item")).to_have_count(2)
    assert marker_survives(page), "deleted in place"
    for image in doomed:
        expect(page.locator(f"#image-{image.pk}")).to_have_count(0)
    assert set(Image.objects.filter(owner=user)) == {images[0], images[3]}
    assert not any(path.exists() for path in files)
    assert Task.objects.filter(owner=user).count() == 1
    assert page.errors == []


def test_the_zip_download_holds_the_originals_and_a_manifest(page, live_server, tmp_path):
    user = UserFactory()
    images = ImageFactory.bulk_create_batch(3, owner=user, files=True, task__prompt="a harbour at dusk")
    chosen = images[:2]
    open_gallery(page, live_server, user)
    for image in chosen:
        page.locator(f"#image-{image.pk}").get_by_label("Select image").check()
    with page.expect_download() as info:
        page.get_by_role("button", name="Download zip").click()
    download = info.value
    assert download.suggested_filename.startswith("atelier-2-images-") and download.suggested_filename.endswith(".zip")
    path = tmp_path / "gallery.zip"
    download.save_as(path)
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == sorted([f"atelier-{image.pk}.png" for image in chosen] + ["manifest.json"])
        for image in chosen:
            assert archive.read(f"atelier-{image.pk}.png") == Path(image.file.path).read_bytes()
        manifest = json.loads(archive.read("manifest.json"))["images"]
    assert {entry["image_id"] for entry in manifest} == {str(image.pk) for image in chosen}
    assert all(entry["prompt"] == "a harbour at dusk" and entry["provider"] == "offline" for entry in manifest)
    expect(page).to_have_url(f"{live_server.url}/gallery/")
    assert page.errors == []
