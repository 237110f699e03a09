"""One viewer everywhere, in real Chromium: ←/→ through the thumbnails of the create page, the
history and the gallery (loading the next page at the end), the shortcut list, the gallery's
justified rows at desktop and phone sizes (screenshots in /tmp/viewer-shots/), lazy thumbnails,
the remembered thumbnail size, and a bulk tag that keeps the selection and the scroll position."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from generator.models import Image, Tag
from tests.factories import PASSWORD, FinishedTaskFactory, ImageFactory, UserFactory

from .conftest import marker_survives, set_marker, sign_in, wait_for_loaded_images

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/viewer-shots")
DIALOG = "#image-modal"
SHOWN_ID = "() => document.querySelector('#image-modal .image-panel')?.dataset.imageId"
# width × height of the originals: wide, tall, square and in between.
SIZES = [(1024, 576), (512, 768), (512, 512), (768, 512), (576, 1024), (1024, 448), (640, 640), (448, 640)]


def shown_id(page) -> str | None:
    return page.evaluate(SHOWN_ID)


def expect_shown(page, image: Image) -> None:
    page.wait_for_function(f"id => ({SHOWN_ID})() === id", arg=str(image.pk))
    expect(page.locator(f"{DIALOG} .image-figure img")).to_have_attribute("src", image.url)


def mixed_gallery(user, count: int) -> list[Image]:
    """`count` images of mixed aspect ratios with real files, newest first."""
    now = timezone.now()
    images: list[Image] = []
    for n in range(count):
        width, height = SIZES[n % len(SIZES)]
        images += ImageFactory.bulk_create_batch(
            1,
            owner=user,
            files=True,
            newest=now - timedelta(minutes=n),
            task__width=width,
            task__height=height,
            task__seed=n * 3,  # the files' colour follows the seed
        )
    return images


# --- ←/→ from every page ----------------------------------------------------------------------


def test_the_viewer_steps_through_the_create_page_and_lists_its_shortcuts(page, live_server):
    user = UserFactory()
    older = FinishedTaskFactory(owner=user, num_images=1, prompt="an older harbour")
    newer = FinishedTaskFactory(owner=user, num_images=2, prompt="a newer lighthouse")
    newer_images, older_images = newer.ordered_images, older.ordered_images
    sign_in(page, live_server, user, PASSWORD)
    set_marker(page)
    first = page.locator(f'#task-{newer.pk} a[data-modal][href="/images/{newer_images[0].pk}/"]')
    # Without JavaScript the thumbnail goes to the image's page, not to the raw file.
    expect(first).not_to_have_attribute("target", "_blank")
    first.click()
    dialog = page.locator(DIALOG)
    expect(dialog).to_be_visible()
    expect_shown(page, newer_images[0])
    expect(dialog.locator("[data-viewer-position]")).to_have_text("1 of 3")
    expect(dialog.get_by_role("button", name="Previous")).to_be_disabled()

    page.keyboard.press("ArrowRight")
    expect_shown(page, newer_images[1])
    page.keyboard.press("ArrowRight")  # into the next task's card
    expect_shown(page, older_images[0])
    expect(dialog.locator("[data-viewer-position]")).to_have_text("3 of 3")
    expect(dialog.get_by_role("button", name="Next")).to_be_disabled()
    page.keyboard.press("ArrowRight")  # the end: stays
    expect_shown(page, older_images[0])
    page.keyboard.press("ArrowLeft")
    expect_shown(page, newer_images[1])

    # "?" lists the shortcuts, and again hides them.
    keys = dialog.locator("#viewer-keys")
    expect(keys).to_be_hidden()
    page.keyboard.press("?")
    expect(keys).to_be_visible()
    expect(keys).to_contain_text("Favourite or unfavourite")
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "viewer-1280x800-shortcuts.png"))
    expect(dialog.get_by_role("button", name="Keyboard shortcuts")).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("?")
    expect(keys).to_be_hidden()

    # F favourites the image shown; typing "f" in the tag field does not.
    page.keyboard.press("f")
    expect(dialog.get_by_role("button", name="Favourite")).to_have_attribute("aria-pressed", "true")
    assert Image.objects.get(pk=newer_images[1].pk).is_favorite
    dialog.get_by_label("Add a tag").fill("fff")
    expect(dialog.get_by_role("button", name="Favourite")).to_have_attribute("aria-pressed", "true")

    # D downloads the original; Delete asks first (and stays in the viewer).
    with page.expect_download() as download:
        dialog.get_by_role("button", name="Favourite").focus()  # out of the tag field
        page.keyboard.press("d")
    assert download.value.suggested_filename.endswith(".png")
    page.keyboard.press("Delete")
    expect(dialog.get_by_role("heading", name="Delete this image?")).to_be_visible()
    page.keyboard.press("ArrowRight")  # no stepping away from the question
    expect(dialog.get_by_role("heading", name="Delete this image?")).to_be_visible()
    dialog.get_by_role("link", name="Cancel, keep it").click()
    expect_shown(page, newer_images[1])
    assert Image.objects.filter(pk=newer_images[1].pk).exists()

    # The buttons do what the keys do, and keep focus for the next press.
    dialog.get_by_role("button", name="Next").click()
    expect_shown(page, older_images[0])
    dialog.get_by_role("button", name="Previous").click()
    expect_shown(page, newer_images[1])
    expect(dialog.get_by_role("button", name="Previous")).to_be_focused()

    # Escape closes it; focus goes to the thumbnail of the image last shown.
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page.locator(f'#task-{newer.pk} a[href="/images/{newer_images[1].pk}/"]')).to_be_focused()
    assert marker_survives(page)
    assert page.errors == []


def test_the_viewer_steps_through_history_and_loads_older_rows_at_the_end(page, live_server):
    user = UserFactory()
    now = timezone.now()
    # 26 tasks of one image: the history shows 25, then loads the 26th when asked.
    tasks = [
        FinishedTaskFactory(
            owner=user, num_images=1, prompt=f"harbour study {n}", created_at=now - timedelta(minutes=n)
        )
        for n in range(26)
    ]
    sign_in(page, live_server, user, PASSWORD)
    page.goto(f"{live_server.url}/history/")
    set_marker(page)
    rows = page.locator("#history-rows tr.history-row")
    expect(rows).to_have_count(25)
    last_shown = tasks[24].ordered_images[0]
    # Opened without scrolling the page (a real click would scroll the row into view, and the
    # page's own infinite scroll would load the older rows first): the viewer must ask for them.
    page.locator(f"#task-row-{tasks[24].pk} a[data-modal]").dispatch_event("click")
    expect_shown(page, last_shown)
    expect(page.locator(f"{DIALOG} [data-viewer-position]")).to_have_text("25 of 25+")
    page.keyboard.press("ArrowRight")  # past the last row: the older rows load, the viewer goes on
    expect_shown(page, tasks[25].ordered_images[0])
    expect(rows).to_have_count(26)
    expect(page.locator(f"{DIALOG} [data-viewer-position]")).to_have_text("26 of 26")
    page.keyboard.press("ArrowLeft")
    expect_shown(page, last_shown)
    page.keyboard.press("Escape")
    expect(page.locator(f"#task-row-{tasks[24].pk} a[data-modal]")).to_be_focused()
    assert marker_survives(page)
    assert page.errors == []


def test_the_viewer_steps_through_the_gallery_into_its_next_page(page, live_server):
    user = UserFactory()
    images = ImageFactory.bulk_create_batch(50, owner=user, files=True)  # a page of 48, then 2
    sign_in(page, live_server, user, PASSWORD)
    page.goto(f"{live_server.url}/gallery/")
    set_marker(page)
    tiles = page.locator("#gallery-grid .gallery-item")
    expect(tiles).to_have_count(48)
    page.locator(f"#image-{images[46].pk} a.gallery-thumb").dispatch_event("click")  # no scroll: see above
    expect_shown(page, images[46])
    expect(page.locator(f"{DIALOG} [data-viewer-position]")).to_have_text("47 of 48+")
    page.keyboard.press("ArrowRight")
    expect_shown(page, images[47])
    page.keyboard.press("ArrowRight")  # the next page loads under the dialog
    expect_shown(page, images[48])
    expect(tiles).to_have_count(50)
    page.keyboard.press("ArrowRight")
    expect_shown(page, images[49])
    expect(page.locator(f"{DIALOG} [data-viewer-position]")).to_have_text("50 of 50")
    page.keyboard.press("f")  # the tile behind gets its star
    expect(page.locator(f"#image-{images[49].pk} .gallery-star")).to_be_attached()
    page.keyboard.press("f")
    expect(page.locator(f"#image-{images[49].pk} .gallery-star")).to_be_hidden()
    page.keyboard.press("Escape")
    expect(page.locator(f"#image-{images[49].pk} a.gallery-thumb")).to_be_focused()
    assert marker_survives(page)
    assert page.errors == []


def test_the_task_page_opens_the_same_viewer(page, live_server):
    user = UserFactory()
    task = FinishedTaskFactory(owner=user, num_images=2)
    first, second = task.ordered_images
    sign_in(page, live_server, user, PASSWORD)
    page.goto(f"{live_server.url}{task.get_absolute_url()}")
    page.locator(f'a[data-modal][href="/images/{first.pk}/"]').click()
    expect_shown(page, first)
    page.keyboard.press("ArrowRight")
    expect_shown(page, second)
    assert page.errors == []


def test_the_viewer_works_on_a_phone_with_its_buttons(browser, live_server):
    user = UserFactory()
    task = FinishedTaskFactory(owner=user, num_images=2, width=576, height=1024)
    first, second = task.ordered_images
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, has_touch=True, is_mobile=True
    )
    page = context.new_page()
    try:
        page.errors = []
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        sign_in(page, live_server, user, PASSWORD)
        page.locator(f'a[data-modal][href="/images/{first.pk}/"]').tap()
        expect_shown(page, first)
        dialog = page.locator(DIALOG)
        next_button = dialog.get_by_role("button", name="Next")
        expect(next_button).to_be_in_viewport()
        next_button.tap()
        expect_shown(page, second)
        # The tall picture fits the screen at its own ratio.
        box = dialog.locator(".image-figure img").bounding_box()
        assert box and box["width"] <= 390 and abs(box["width"] / box["height"] - 576 / 1024) < 0.02, box
        SHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SHOTS / "viewer-phone-390x844.png"))
        # A swipe to the right on the picture goes back.
        swipe(page, box, dx=150)
        expect_shown(page, first)
        swipe(page, dialog.locator(".image-figure img").bounding_box(), dx=-150)
        expect_shown(page, second)
        assert page.errors == []
    finally:
        context.close()


def swipe(page, box: dict, dx: float) -> None:
    """A one-finger horizontal swipe across the middle of `box`, through the DevTools protocol."""
    cdp = page.context.new_cdp_session(page)
    x, y = box["x"] + box["width"] / 2 - dx / 2, box["y"] + min(box["height"], 300) / 2
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    for n in range(1, 6):
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x + dx * n / 5, "y": y}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()


# --- the gallery's layout ------------------------------------------------------------------------


TILE_BOXES = """() => [...document.querySelectorAll('#gallery-grid .gallery-item')].map(item => {
    const box = item.querySelector('.gallery-thumb').getBoundingClientRect();
    return {w: +item.dataset.w, h: +item.dataset.h, left: box.left, right: box.right, top: box.top, width: box.width, height: box.height};
})"""


def rows_of(boxes: list[dict]) -> list[list[dict]]:
    rows: list[list[dict]] = []
    for box in boxes:
        if rows and abs(rows[-1][0]["top"] - box["top"]) < 1:
            rows[-1].append(box)
        else:
            rows.append([box])
    return rows


def check_justified(page, name: str) -> list[list[dict]]:
    grid = page.locator("#gallery-grid").bounding_box()
    boxes = page.evaluate(TILE_BOXES)
    for box in boxes:  # every tile at its image's aspect ratio, within a pixel or two
        assert abs(box["width"] - box["height"] * box["w"] / box["h"]) <= 2, (name, box)
    rows = rows_of(boxes)
    assert len(rows) > 1
    for row in rows[:-1]:  # every full row fills the grid's width, one height per row
        assert abs(row[0]["left"] - grid["x"]) <= 1, (name, row)
        assert abs(row[-1]["right"] - (grid["x"] + grid["width"])) <= 1.5, (name, row)
        assert max(box["height"] for box in row) - min(box["height"] for box in row) <= 1, (name, row)
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}-top.png"))
    page.locator(".gallery-summary").evaluate("node => node.scrollIntoView()")
    page.wait_for_timeout(300)  # the thumbnails now near the screen get their src
    page.wait_for_function(
        "() => [...document.querySelectorAll('#gallery-grid img[src]')].every(img => img.complete && img.naturalWidth)"
    )
    page.screenshot(path=str(SHOTS / f"{name}.png"))
    return rows


def test_the_gallery_keeps_aspect_ratios_in_justified_rows_on_desktop_and_phone(browser, live_server):
    user = UserFactory()
    mixed_gallery(user, 24)
    for name, viewport in [("gallery-1280x800", (1280, 800)), ("gallery-390x844", (390, 844))]:
        width, height = viewport
        context = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=1)
        page = context.new_page()
        try:
            errors: list[str] = []
            page.on("pageerror", lambda error, errors=errors: errors.append(str(error)))
            sign_in(page, live_server, user, PASSWORD)
            page.goto(f"{live_server.url}/gallery/")
            expect(page.locator("#gallery-grid .gallery-item")).to_have_count(24)
            expect(page.locator("#gallery-total")).to_have_text("24 images in your gallery")
            expect(page.locator("#gallery-sketch-note")).to_be_visible()
            expect(page.locator(".gallery-item .badge-sketch")).to_have_count(0)
            page.locator(".gallery-summary").scroll_into_view_if_needed()
            wait_for_loaded_images(page, "#gallery-grid .gallery-item:nth-child(-n+6) img", 6)
            rows = check_justified(page, name)
            assert len(rows[0]) >= (4 if width > 1000 else 2)
            assert errors == []
        finally:
            context.close()


def test_offscreen_thumbnails_wait_until_they_come_near(page, live_server):
    user = UserFactory()
    ImageFactory.bulk_create_batch(48, owner=user, files=True)
    sign_in(page, live_server, user, PASSWORD)
    page.goto(f"{live_server.url}/gallery/")
    page.wait_for_load_state("networkidle")
    loaded = page.evaluate(
        "() => [...document.querySelectorAll('#gallery-grid img')].filter(img => img.currentSrc).length"
    )
    assert 12 <= loaded < 48, loaded
    page.locator("#gallery-grid .gallery-item").last.scroll_into_view_if_needed()
    wait_for_loaded_images(page, "#gallery-grid .gallery-item:last-child img", 1)
    assert page.errors == []


def test_the_thumbnail_size_is_remembered_in_this_browser(page, live_server):
    user = UserFactory()
    mixed_gallery(user, 8)
    sign_in(page, live_server, user, PASSWORD)
    page.goto(f"{live_server.url}/gallery/")
    size = page.get_by_label("Thumbnail size")
    expect(size).to_be_visible()
    first = page.locator("#gallery-grid .gallery-thumb").first
    before = first.bounding_box()["height"]
    size.fill("120")
    page.wait_for_function(
        "() => document.querySelector('#gallery-grid .gallery-thumb').getBoundingClientRect().height < 180"
    )
    smaller = first.bounding_box()["height"]
    assert smaller < before
    page.reload()
    expect(page.get_by_label("Thumbnail size")).to_have_value("120")
    assert abs(page.locator("#gallery-grid .gallery-thumb").first.bounding_box()["height"] - smaller) <= 2
    assert page.errors == []


# --- bulk actions in place ----------------------------------------------------------------------


def test_a_bulk_tag_keeps_the_selection_and_the_scroll_position(page, live_server):
    user = UserFactory()
    images = ImageFactory.bulk_create_batch(48, owner=user, files=True)
    sign_in(page, live_server, user, PASSWORD)
    page.goto(f"{live_server.url}/gallery/")
    set_marker(page)
    chosen = images[30:33]
    for image in chosen:
        page.locator(f"#image-{image.pk}").get_by_label("Select image").check()
    expect(page.locator("#selection-count")).to_have_text("3 images selected")
    scroll = page.evaluate("() => window.scrollY")
    assert scroll > 300, "the chosen tiles are below the first screen"
    tile = page.locator(f"#image-{chosen[0].pk}")
    where = tile.bounding_box()["y"]

    def stayed() -> bool:
        """Not back at the top, and the tiles where they were on the screen (the toolbar's
        message may add a line above them: Chromium's scroll anchoring keeps them in place)."""
        return page.evaluate("() => window.scrollY") >= scroll and abs(tile.bounding_box()["y"] - where) <= 2

    page.get_by_placeholder("Tag name").fill("harbour")
    page.get_by_role("button", name="Add tag").click()
    expect(page.locator("#gallery-bulk-status")).to_have_text("Tagged 3 images “harbour”.")
    assert set(Tag.objects.get(owner=user, name="harbour").images.all()) == set(chosen)
    assert stayed()
    checked = page.eval_on_selector_all('#gallery-grid input[name="image"]:checked', "boxes => boxes.map(b => b.value)")
    assert checked == [str(image.pk) for image in chosen]
    expect(page.locator("#selection-count")).to_have_text("3 images selected")

    # Favourite: the tiles get their star in place, still selected.
    page.get_by_role("button", name="Favourite", exact=True).click()
    expect(page.locator("#gallery-bulk-status")).to_have_text("Added 3 images to your favourites.")
    for image in chosen:
        expect(page.locator(f"#image-{image.pk} .gallery-star")).to_be_visible()
        expect(page.locator(f"#image-{image.pk}").get_by_label("Select image")).to_be_checked()
    assert stayed()

    # Delete: the tiles go, the total follows, the rest stays where it was.
    page.get_by_role("button", name="Delete…").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    page.screenshot(path=str(SHOTS / "gallery-bulk-delete-question.png"))
    page.get_by_role("dialog").get_by_role("button", name="Delete 3 images").click()
    expect(page.locator("#gallery-bulk-status")).to_have_text("Deleted 3 images.")
    expect(page.locator("#gallery-grid .gallery-item")).to_have_count(45)
    expect(page.locator("#gallery-total")).to_have_text("45 images in your gallery")
    expect(page.locator("#selection-count")).to_have_text("None selected")
    assert not Image.objects.filter(pk__in=[image.pk for image in chosen]).exists()
    assert marker_survives(page), "no reload"
    assert page.errors == []


def test_without_javascript_the_gallery_keeps_its_ratios_and_links_to_image_pages(browser, live_server):
    user = UserFactory()
    images = mixed_gallery(user, 16)
    context = browser.new_context(viewport={"width": 1280, "height": 800}, java_script_enabled=False)
    page = context.new_page()
    try:
        sign_in(page, live_server, user, PASSWORD)
        page.goto(f"{live_server.url}/gallery/")
        expect(page.locator("#gallery-grid .gallery-item")).to_have_count(16)
        expect(page.get_by_label("Thumbnail size")).to_be_hidden()
        page.locator("#gallery-grid .gallery-item").last.scroll_into_view_if_needed()
        shown = page.locator("#gallery-grid img:visible")
        expect(shown).to_have_count(16)
        wait_for_loaded_images(page, "#gallery-grid img:not([data-src])", 16)
        check_justified(page, "gallery-no-js-1280x800")
        page.locator(f"#image-{images[0].pk} a.gallery-thumb").click()
        expect(page).to_have_url(f"{live_server.url}/images/{images[0].pk}/")
    finally:
        context.close()
