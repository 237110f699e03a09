"""Issue 19 in real Chromium, with SHARING=public: A publishes from the viewer, B finds it on
Explore (infinite scroll, the search box), likes it in place, opens its page and sees it in Liked;
A makes a share link that a fresh context without an account opens (the image, title, prompt,
Open Graph tags, the original's download), then revokes it. No console errors, the CSP header on
every page and no CSP violation (a `securitypolicyviolation` listener added by an init script,
which the policy does not block). Screenshots in /tmp/sharing-shots/."""

from __future__ import annotations

import re
from datetime import timedelta
from io import BytesIO
from pathlib import Path

import pytest
from django.utils import timezone
from PIL import Image as PILImage
from playwright.sync_api import expect

from generator.models import Image
from sharing.models import Publication, ShareLink
from sharing.publishing import publish
from tests.factories import PASSWORD, FinishedTaskFactory, ImageFactory, UserFactory

from .conftest import DEFAULT_TIMEOUT_MS, VIEWPORT, marker_survives, set_marker, sign_in, wait_for_loaded_images

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/sharing-shots")
PHONE = {"width": 390, "height": 844}
PROMPT = "A lighthouse on a basalt cliff at dusk, gulls over the swell, ink and watercolour"
TITLE = "Lighthouse at dusk"
LINK_TITLE = "For the harbour club"
SIZES = [(1024, 576), (512, 768), (512, 512), (768, 512), (576, 1024), (1024, 448), (640, 640), (448, 640)]
# Every page records what the Content-Security-Policy blocked, before any of its own scripts run.
CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", event => {
  window.__cspViolations.push(event.violatedDirective + " " + (event.blockedURI || "inline"));
});
"""


@pytest.fixture
def public_sharing(settings):
    settings.SHARING = "public"


@pytest.fixture
def new_page(browser):
    """Fresh contexts (no shared cookies): each page collects page errors and every console error."""
    contexts = []

    def make(**options):
        context = browser.new_context(
            viewport=options.pop("viewport", VIEWPORT), color_scheme="light", locale="en-US", **options
        )
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        context.add_init_script(CSP_LISTENER)
        contexts.append(context)
        page = context.new_page()
        page.errors = []
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        page.on("console", lambda message: message.type == "error" and page.errors.append(message.text))
        return page

    yield make
    for context in contexts:
        context.close()


def assert_clean(page, response=None) -> None:
    """No error so far, no CSP violation on the page shown, and (for a navigation) the policy sent."""
    assert page.errors == []
    assert page.evaluate("() => window.__cspViolations") == []
    if response is not None:
        policy = response.header_value("content-security-policy") or ""
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy, policy


def shot(page, name: str, *, full_page: bool = False) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.mouse.move(0, 0)
    page.screenshot(path=str(path), full_page=full_page)
    return path


def others_published(count: int) -> list[Publication]:
    """`count` published images of mixed aspect ratios by someone else, published before A's."""
    author = UserFactory(username="marguerite")
    now = timezone.now()
    images: list[Image] = []
    for n in range(count):
        width, height = SIZES[n % len(SIZES)]
        images += ImageFactory.bulk_create_batch(
            1,
            owner=author,
            files=True,
            newest=now - timedelta(minutes=n + 5),
            task__width=width,
            task__height=height,
            task__seed=n * 7,
            task__prompt=f"Study number {n}",
        )
    return [publish(image, title=f"Study {n}") for n, image in enumerate(images)]


def expect_tiles_keep_their_ratio(page, selector: str) -> None:
    """Each tile's picture box has its image's aspect ratio (data-w/data-h), and a real size."""
    boxes = page.eval_on_selector_all(
        selector,
        """items => items.map(item => {
            const box = item.querySelector(".gallery-thumb").getBoundingClientRect();
            return [box.width, box.height, item.dataset.w / item.dataset.h];
        })""",
    )
    for width, height, ratio in boxes:
        assert width > 20 and height > 20, boxes
        assert abs(width / height - ratio) < 0.03 * ratio, (width, height, ratio)


@pytest.mark.usefixtures("public_sharing")
def test_publish_explore_like_and_a_revocable_share_link(new_page, live_server, tmp_path):
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    image = FinishedTaskFactory(owner=alice, num_images=1, prompt=PROMPT, width=768, height=512).ordered_images[0]
    others = others_published(52)  # more than Explore's page of 48 with A's

    # --- A publishes from the viewer, in place -------------------------------------------------
    a = new_page()
    sign_in(a, live_server, alice, PASSWORD)
    a.get_by_role("navigation", name="Main").get_by_role("link", name="Gallery").click()
    expect(a.get_by_role("heading", name="Gallery")).to_be_visible()
    a.locator(f"#image-{image.pk} .gallery-thumb").click()
    viewer = a.locator("#image-modal")
    expect(viewer).to_be_visible()
    panel = viewer.locator("#publish-panel")
    expect(panel.get_by_role("heading", name="Publish", exact=True)).to_be_visible()
    set_marker(a)
    panel.get_by_label("Title (optional)").fill(TITLE)
    panel.get_by_label("Show the prompt and settings").check()
    panel.get_by_role("button", name="Publish to Explore").click()
    expect(panel.get_by_role("heading", name="Published", exact=True)).to_be_visible()
    expect(panel.get_by_role("link", name="See it on Explore")).to_be_visible()
    expect(panel.locator('[data-count="likes"]')).to_have_text("0")
    expect(panel.get_by_role("button", name="Save changes")).to_be_visible()
    assert marker_survives(a), "published in place"
    publication = Publication.objects.get(image=image)
    assert (publication.title, publication.show_prompt) == (TITLE, True)
    panel.scroll_into_view_if_needed()
    shot(a, "1-viewer-publish-panel")
    assert_clean(a)

    # --- B finds it on Explore, likes it, opens its page, sees it in Liked -----------------------
    b = new_page()
    sign_in(b, live_server, bob, PASSWORD)
    with b.expect_navigation() as navigation:
        b.get_by_role("navigation", name="Main").get_by_role("link", name="Explore").click()
    response = navigation.value
    expect(b.get_by_role("heading", name="Explore")).to_be_visible()
    tiles = b.locator("#explore-grid .explore-item")
    expect(tiles).to_have_count(48)
    mine = b.locator(f"#publication-{publication.pk}")
    expect(tiles.first).to_have_id(f"publication-{publication.pk}")  # the latest first
    expect(mine.locator(".explore-title")).to_have_text(TITLE)
    expect(mine.locator(".explore-author")).to_have_text("alice")
    wait_for_loaded_images(b, "#explore-grid .explore-item:nth-child(-n+12) img", 12)
    expect_tiles_keep_their_ratio(b, "#explore-grid .explore-item")
    shot(b, "2-explore")
    assert_clean(b, response)

    # Infinite scroll: the rest come in place, with the same layout, their pictures loaded lazily.
    set_marker(b)
    b.locator(".gallery-more").scroll_into_view_if_needed()
    expect(tiles).to_have_count(len(others) + 1)
    expect(b.locator(".gallery-more")).to_have_count(0)
    last = tiles.last
    last.scroll_into_view_if_needed()
    expect(last).to_have_id(f"publication-{others[0].pk}")  # the first published
    b.wait_for_function(
        "item => { const img = item.querySelector('img'); return img.complete && img.naturalWidth > 0; }",
        arg=last.element_handle(),
    )
    expect_tiles_keep_their_ratio(b, "#explore-grid .explore-item")
    assert marker_survives(b)
    shot(b, "3-explore-scrolled")
    assert_clean(b)

    b.get_by_label("Search titles and shown prompts").fill("lighthouse")
    b.get_by_role("button", name="Filter").click()
    expect(b).to_have_url(re.compile(r"/explore/\?q=lighthouse$"))
    expect(tiles).to_have_count(1)
    expect(mine).to_be_visible()

    set_marker(b)
    like = mine.get_by_role("button", name=re.compile("Likes"))
    expect(like).to_have_text(re.compile(r"Likes\s*0$"))
    expect(like).to_have_attribute("aria-pressed", "false")
    like.click()
    like = mine.get_by_role("button", name=re.compile("Likes"))
    expect(like).to_have_attribute("aria-pressed", "true")
    expect(like).to_have_text(re.compile(r"Likes\s*1$"))
    assert marker_survives(b), "liked in place"
    b.reload()
    expect(mine.get_by_role("button", name=re.compile("Likes"))).to_have_attribute("aria-pressed", "true")
    expect(mine.get_by_role("button", name=re.compile("Likes"))).to_have_text(re.compile(r"Likes\s*1$"))

    with b.expect_navigation() as navigation:
        mine.locator(".gallery-thumb").click()
    response = navigation.value
    expect(b.get_by_role("heading", name=TITLE, level=1)).to_be_visible()
    expect(b.locator(".publication-author")).to_contain_text("By alice")
    expect(b.locator(".publication-settings")).to_contain_text(PROMPT)
    assert wait_for_loaded_images(b, ".publication-image", 1) == [image.width]
    shot(b, "4-publication")
    assert_clean(b, response)

    b.goto(live_server.url + "/explore/liked/")
    expect(b.get_by_role("heading", name="Liked")).to_be_visible()
    expect(b.locator("#explore-grid .explore-item")).to_have_count(1)
    expect(b.locator(f"#publication-{publication.pk} .explore-title")).to_have_text(TITLE)
    assert_clean(b)

    # A's gallery marks it published, with B's like.
    a.keyboard.press("Escape")
    expect(viewer).to_be_hidden()
    a.reload()
    mark = a.locator(f"#image-{image.pk} .gallery-published")
    expect(mark).to_be_visible()
    expect(mark.locator(".gallery-likes")).to_have_text("♥ 1")
    box, thumb = mark.bounding_box(), a.locator(f"#image-{image.pk} .gallery-thumb").bounding_box()
    assert box and thumb and thumb["y"] <= box["y"] and box["y"] + box["height"] <= thumb["y"] + thumb["height"]
    shot(a, "5-gallery-published-mark")
    assert_clean(a)

    # --- A makes a share link from the viewer --------------------------------------------------
    a.locator(f"#image-{image.pk} .gallery-thumb").click()
    expect(viewer).to_be_visible()
    viewer.get_by_role("link", name="Share link").click()
    expect(a.get_by_role("heading", name="New share link")).to_be_visible()
    a.get_by_label("Title").fill(LINK_TITLE)
    a.get_by_role("button", name="Make the link").click()
    expect(a).to_have_url(f"{live_server.url}/links/#new-link")
    url = a.get_by_label("Your new share link.").input_value()
    link = ShareLink.objects.get(owner=alice)
    assert url.startswith(f"{live_server.url}/s/") and url.endswith("/")
    shot(a, "6-links-new")
    assert_clean(a)

    # --- someone without an account opens it -------------------------------------------------
    visitor = new_page()
    response = visitor.goto(url)
    assert response is not None and response.status == 200
    expect(visitor.get_by_role("heading", name=LINK_TITLE, level=1)).to_be_visible()
    expect(visitor.locator(".prompt")).to_have_text(PROMPT)
    shown = visitor.get_by_role("img", name=LINK_TITLE)
    assert wait_for_loaded_images(visitor, ".shared-images img", 1) == [image.width]
    rendered = shown.bounding_box()
    assert rendered and rendered["width"] > 100 and rendered["height"] > 50
    assert abs(rendered["width"] / rendered["height"] - image.width / image.height) < 0.02
    og = dict(
        visitor.eval_on_selector_all(
            'meta[property^="og:"]', "tags => tags.map(tag => [tag.getAttribute('property'), tag.content])"
        )
    )
    assert og["og:title"] == LINK_TITLE and og["og:url"] == url and og["og:description"] == PROMPT
    assert og["og:image"].startswith(f"{live_server.url}/s/") and og["og:image"].endswith("/file")
    with visitor.expect_download() as info:
        visitor.get_by_role("link", name="Download original").click()
    saved = tmp_path / "original.png"
    info.value.save_as(saved)
    with PILImage.open(BytesIO(saved.read_bytes())) as original:
        assert (original.format, original.size) == ("PNG", (image.width, image.height))
    shot(visitor, "7-share-page")
    visitor.set_viewport_size(PHONE)
    expect(shown).to_be_visible()
    rendered = shown.bounding_box()
    assert rendered and 0 < rendered["width"] <= PHONE["width"]
    shot(visitor, "8-share-page-phone", full_page=True)
    visitor.set_viewport_size(VIEWPORT)
    assert_clean(visitor, response)

    # --- A revokes it; the visitor's next visit is a 404 ---------------------------------------
    row = a.locator(f"#link-{link.pk}")
    row.get_by_text("Revoke…").click()
    row.get_by_role("button", name="Revoke this link").click()
    expect(a.locator(f"#link-{link.pk}")).to_contain_text("Revoked")
    link.refresh_from_db()
    assert link.revoked_at is not None
    assert_clean(a)
    response = visitor.reload()
    assert response is not None and response.status == 404
    expect(visitor.get_by_role("img", name=LINK_TITLE)).to_have_count(0)

    # --- Explore in Chinese, and on a phone ----------------------------------------------------
    b.goto(live_server.url + "/explore/")
    with b.expect_navigation():
        b.locator("#language-select").select_option("zh-hans")
    expect(b.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(b.locator("#explore-grid .explore-item")).to_have_count(48)
    wait_for_loaded_images(b, "#explore-grid .explore-item:nth-child(-n+12) img", 12)
    shot(b, "9-explore-zh")
    b.set_viewport_size(PHONE)
    expect_tiles_keep_their_ratio(b, "#explore-grid .explore-item:nth-child(-n+12)")
    widths = b.eval_on_selector_all(
        "#explore-grid .explore-item", "items => items.map(i => i.getBoundingClientRect().right)"
    )
    assert max(widths) <= PHONE["width"], "no tile overflows the phone's width"
    shot(b, "10-explore-phone")
    assert_clean(b)
