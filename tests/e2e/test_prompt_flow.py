"""Issue 20 in real Chromium: the prompt helper (Improve → Edit → Generate, and Dismiss) against a
local chat-completions server (tests/fake_llm.py); a style preset picked on the create page and
named in the viewer and on the task page; four variants made side by side by a real worker, one
kept (its images tagged `kept`); then the same, compactly, in Chinese. On every page: no page or
console error, and no CSP violation (a `securitypolicyviolation` listener added by an init script).
Screenshots in /tmp/prompt-shots/, at 1280×800 and on a phone (390×844)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
from django.apps import apps
from django.utils import translation
from playwright.sync_api import expect

from generator.models import Image, Task
from prompts.models import Preset, VariantSet
from tests.cluster import wait_for_final
from tests.factories import PASSWORD, UserFactory
from tests.fake_llm import Reply, fake_llm_fixture  # noqa: F401  (the fixture)

from .conftest import DEFAULT_TIMEOUT_MS, VIEWPORT, marker_survives, set_marker, sign_in

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/prompt-shots")
PHONE = {"width": 390, "height": 844}
TYPED = "a lighthouse on a cliff at dawn"
SUGGESTED = "a lighthouse on a rocky cliff at dawn, oil painting, warm golden light"
EDITED = "a lighthouse on a rocky cliff at dawn, oil painting, cold golden light"
WATERCOLOUR = "watercolour painting of {prompt}, soft washes, visible paper texture, gentle colour bleeds"
FOUR = ["Photographic", "Watercolour", "Line art", "Pixel art"]
CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", event => {
  window.__cspViolations.push(event.violatedDirective + " " + (event.blockedURI || "inline"));
});
"""


def zh(message: str, context: str | None = None) -> str:
    with translation.override("zh-hans"):
        return translation.pgettext(context, message) if context else translation.gettext(message)


@pytest.fixture
def seeded_presets(transactional_db) -> list[Preset]:
    """The six staff presets of prompts/migrations/0002 (a live_server test's flush removes them)."""
    migration = importlib.import_module("prompts.migrations.0002_seed_presets")
    migration.seed(apps, None)
    return list(Preset.objects.filter(owner__isnull=True).order_by("position"))


@pytest.fixture
def new_page(browser):
    """Fresh contexts (no shared cookies): each page collects page errors and every console error."""
    contexts = []

    def make(*, locale: str = "en-US", viewport: dict | None = None):
        context = browser.new_context(viewport=viewport or VIEWPORT, color_scheme="light", locale=locale)
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


def assert_clean(page) -> None:
    assert page.errors == []
    assert page.evaluate("() => window.__cspViolations") == []


def shot(page, name: str, *, full_page: bool = False) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.mouse.move(0, 0)
    # caret="initial": hiding the caret leaves style="" on every field, which htmx's settling then
    # copies onto the swapped-in field: an inline style the CSP (rightly) blocks.
    page.screenshot(path=str(path), full_page=full_page, caret="initial")
    return path


def sign_in_chinese(page, live_server, user) -> None:
    page.goto(live_server.url + "/accounts/login/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    page.get_by_label(zh("Username")).fill(user.get_username())
    page.get_by_label(zh("Password")).fill(PASSWORD)
    page.locator("form.stack button[type=submit]").click()
    expect(page).to_have_url(f"{live_server.url}/")


def side_by_side(panel) -> tuple[dict, dict]:
    """The bounding boxes of "Your prompt" and "Suggestion"."""
    sides = panel.locator(".suggestion-side")
    expect(sides).to_have_count(2)
    return sides.nth(0).bounding_box(), sides.nth(1).bounding_box()


def expect_side_by_side(page, selector: str, count: int) -> None:
    """`count` cards in at most two rows (tops within a few pixels are one row), measured at once
    and waited for: a card swapped in by its poll or the live stream is briefly there twice."""
    page.wait_for_function(
        """([selector, count]) => {
            const tops = [...document.querySelectorAll(selector)].map(card => card.getBoundingClientRect().top);
            if (tops.length !== count) return false;
            tops.sort((a, b) => a - b);
            const rows = 1 + tops.slice(1).filter((top, n) => top - tops[n] > 4).length;
            return rows <= 2;
        }""",
        arg=[selector, count],
    )


# --- the prompt helper ------------------------------------------------------------------------


def test_improve_then_edit_then_generate_keeps_both_prompts_and_dismiss_keeps_the_typed_one(
    new_page, live_server, fake_llm, settings
):
    fake_llm.script(Reply.content(SUGGESTED), Reply.content("a quiet harbour at night, moonlight on the water"))
    user = UserFactory()
    page = new_page()
    sign_in(page, live_server, user, PASSWORD)
    set_marker(page)

    prompt = page.get_by_label("Prompt", exact=True)
    prompt.fill(TYPED)
    improve = page.get_by_role("button", name="Improve")
    expect(improve).to_be_visible()
    improve.click()
    panel = page.locator("#prompt-suggestion")
    expect(panel.get_by_role("heading", name="Your prompt")).to_be_visible()
    expect(panel.get_by_role("heading", name="Suggestion")).to_be_visible()
    expect(panel.locator(".suggestion-side").nth(0)).to_contain_text(TYPED)
    added = panel.locator("ins")
    expect(added.first).to_be_visible()
    assert any("rocky" in text for text in added.all_inner_texts()), added.all_inner_texts()
    assert any("oil painting" in text for text in added.all_inner_texts()), added.all_inner_texts()
    expect(prompt).to_have_value(TYPED)  # nothing changes before a choice
    # Side by side on a wide screen, readable: the added words look different from the rest.
    yours, suggestion = side_by_side(panel)
    assert abs(yours["y"] - suggestion["y"]) < 4 and suggestion["x"] >= yours["x"] + yours["width"], (yours, suggestion)
    styles = added.first.evaluate(
        "el => { const s = getComputedStyle(el); const p = getComputedStyle(el.parentElement);"
        " return [s.backgroundColor, p.backgroundColor, s.textDecorationLine]; }"
    )
    assert styles[0] != styles[1], styles
    panel.scroll_into_view_if_needed()
    shot(page, "01-improve-suggestion")
    request = fake_llm.requests[-1]
    assert request.path == "/v1/chat/completions" and TYPED in str(request.body["messages"])
    assert_clean(page)

    # Edit: the suggestion goes into the box and the cursor with it; a word changed by hand.
    panel.get_by_role("button", name="Edit").click()
    expect(panel.locator("[data-suggestion-panel]")).to_have_count(0)
    expect(prompt).to_have_value(SUGGESTED)
    expect(prompt).to_be_focused()
    prompt.fill(EDITED)
    shot(page, "02-edited")
    page.get_by_role("button", name="Generate").click()
    card = page.locator("#task-list .task-card")
    expect(card).to_have_count(1)
    expect(card.locator(".prompt")).to_have_text(EDITED)
    task = Task.objects.get(owner=user)
    assert (task.prompt, task.original_prompt) == (EDITED, TYPED)
    expect(card).to_have_attribute("data-status", "completed")
    shot(page, "03-generated")
    assert marker_survives(page)
    assert_clean(page)

    # Dismiss: the panel goes, the prompt stays as typed and nothing is generated.
    prompt.fill("a harbour")
    page.get_by_role("button", name="Improve").click()
    expect(panel.locator("ins").first).to_be_visible()
    panel.get_by_role("button", name="Dismiss").click()
    expect(panel.locator("[data-suggestion-panel]")).to_have_count(0)
    expect(prompt).to_have_value("a harbour")
    assert Task.objects.filter(owner=user).count() == 1
    assert_clean(page)


def test_the_suggestion_stacks_on_a_phone(new_page, live_server, fake_llm):
    fake_llm.script(Reply.content(SUGGESTED))
    page = new_page(viewport=PHONE)
    sign_in(page, live_server, UserFactory(), PASSWORD)
    page.get_by_label("Prompt", exact=True).fill(TYPED)
    page.get_by_role("button", name="Improve").click()
    panel = page.locator("#prompt-suggestion")
    expect(panel.locator("ins").first).to_be_visible()
    yours, suggestion = side_by_side(panel)
    assert suggestion["y"] >= yours["y"] + yours["height"] - 1, (yours, suggestion)  # stacked
    assert yours["x"] + yours["width"] <= PHONE["width"] and suggestion["x"] + suggestion["width"] <= PHONE["width"]
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]  # nothing sticks out
    panel.scroll_into_view_if_needed()
    shot(page, "04-phone-suggestion")
    assert_clean(page)


# --- a style preset ---------------------------------------------------------------------------


def test_a_picked_preset_shows_what_it_sets_and_is_named_in_the_viewer_and_on_the_task_page(
    new_page, live_server, seeded_presets
):
    user = UserFactory()
    page = new_page()
    sign_in(page, live_server, user, PASSWORD)
    page.get_by_label("Prompt", exact=True).fill("a fox in the snow")
    page.get_by_label("Style preset").select_option(label="Watercolour")
    card = page.locator("#preset-card")
    expect(card).to_be_visible()
    expect(card.locator("code")).to_have_text(WATERCOLOUR)
    expect(card).to_contain_text("soft washes")
    expect(card).to_contain_text("photorealistic")  # what it adds to the negative prompt
    card.scroll_into_view_if_needed()
    shot(page, "05-preset-card")
    assert_clean(page)

    page.get_by_role("button", name="Generate").click()
    task_card = page.locator("#task-list .task-card")
    expect(task_card).to_have_count(1)
    task = Task.objects.get(owner=user)
    assert task.prompt == WATERCOLOUR.format(prompt="a fox in the snow")
    assert (task.original_prompt, task.preset_name) == ("a fox in the snow", "Watercolour")
    expect(task_card).to_contain_text("Preset: Watercolour")
    expect(task_card).to_have_attribute("data-status", "completed")
    shot(page, "06-preset-task-card")

    # The viewer (the image modal) says which preset made it.
    task_card.locator(".thumbs a.thumb").first.click()
    viewer = page.locator("#image-modal")
    expect(viewer).to_be_visible()
    expect(viewer.locator(".image-preset")).to_have_text("Watercolour")
    shot(page, "07-preset-viewer")
    assert_clean(page)

    page.goto(f"{live_server.url}/tasks/{task.pk}/")
    details = page.locator("dl")
    expect(details.filter(has_text="Preset")).to_contain_text("Watercolour")
    shot(page, "08-preset-task-page")
    assert_clean(page)


# --- variants ---------------------------------------------------------------------------------


@pytest.mark.cluster
def test_four_variants_side_by_side_finish_and_one_is_kept(new_page, live_server, seeded_presets, start_qcluster):
    start_qcluster(OFFLINE_DELAY_SECONDS=0.5)
    user = UserFactory()
    page = new_page()
    sign_in(page, live_server, user, PASSWORD)
    set_marker(page)
    page.get_by_label("Prompt", exact=True).fill("a red kite over the moor")
    variants = page.locator("#variants")
    variants.locator("summary").click()
    expect(variants.get_by_role("button", name="Make variants")).to_be_visible()
    variants.get_by_label("The same prompt under these presets:").check()
    for name in FOUR:
        variants.get_by_label(name, exact=True).check()
    variants.scroll_into_view_if_needed()
    shot(page, "09-variants-picker")
    assert_clean(page)

    variants.get_by_role("button", name="Make variants").click()
    variant_set = page.locator(".variant-set")
    expect(variant_set).to_have_count(1)
    cards = variant_set.locator(".task-card")
    expect(cards).to_have_count(4)
    shot(page, "debug-variants", full_page=True)
    expect_side_by_side(page, ".variant-set .task-card", 4)
    the_set = VariantSet.objects.get(owner=user)
    tasks = list(Task.objects.filter(variant_set=the_set).order_by("created_at", "pk"))
    assert sorted(task.preset_name for task in tasks) == sorted(FOUR)
    for task in tasks:
        wait_for_final(task, timeout=60)
    for n in range(4):
        expect(cards.nth(n)).to_have_attribute("data-status", "completed", timeout=30_000)
    expect_side_by_side(page, ".variant-set .task-card", 4)
    variant_set.scroll_into_view_if_needed()
    shot(page, "10-variants-finished")

    second = cards.nth(1)
    second_id = second.get_attribute("id").removeprefix("task-")
    second.get_by_role("button", name="Keep this one").click()
    expect(second.locator(".badge-kept")).to_have_text("Kept")
    expect(second.get_by_role("button", name="Keep this one")).to_have_count(0)
    for n in (0, 2, 3):
        expect(cards.nth(n).get_by_role("button", name="Keep this one")).to_be_visible()
    assert marker_survives(page)
    shot(page, "11-variant-kept")
    assert_clean(page)

    kept = Task.objects.get(pk=second_id)
    assert VariantSet.objects.get(pk=the_set.pk).kept_id == kept.pk
    tagged = set(Image.objects.filter(tags__name="kept", owner=user).values_list("pk", flat=True))
    assert tagged == set(kept.images.values_list("pk", flat=True)) and tagged

    # The gallery's tag filter finds exactly the kept one's images.
    page.goto(f"{live_server.url}/gallery/?tag=kept")
    expect(page.locator(".gallery img")).to_have_count(len(tagged))
    shot(page, "12-gallery-kept")
    # The set's own page and the history say what they are.
    page.goto(f"{live_server.url}/variants/{the_set.pk}/")
    expect(page.locator(".task-card")).to_have_count(4)
    expect(page.locator(f"#task-{kept.pk} .badge-kept")).to_be_visible()
    shot(page, "13-variant-set-page")
    page.goto(f"{live_server.url}/history/")
    expect(page.locator(".variant-label")).to_have_count(4)
    expect(page.locator(".variant-label").filter(has_text="kept")).to_have_count(1)
    shot(page, "14-history-variants")
    assert_clean(page)


# --- in Chinese -------------------------------------------------------------------------------


@pytest.mark.cluster
def test_the_three_flows_in_chinese(new_page, live_server, fake_llm, seeded_presets, start_qcluster):
    start_qcluster(OFFLINE_DELAY_SECONDS=0.2)
    fake_llm.script(Reply.content("黎明时分悬崖上的灯塔，油画，温暖的光"))
    user = UserFactory()
    page = new_page(locale="zh-CN")
    sign_in_chinese(page, live_server, user)
    assert zh("Improve") == "优化" and zh("Keep this one") == "保留这一个"  # the catalogue is there

    # Improve → Edit → Generate.
    prompt = page.get_by_label(zh("Prompt"), exact=True)
    prompt.fill("悬崖上的灯塔")
    page.get_by_role("button", name="优化").click()
    panel = page.locator("#prompt-suggestion")
    expect(panel.get_by_role("heading", name=zh("Your prompt"))).to_be_visible()
    expect(panel.get_by_role("heading", name=zh("Suggestion"))).to_be_visible()
    expect(panel.locator("ins").first).to_be_visible()
    expect(panel.get_by_role("button", name=zh("Accept"))).to_be_visible()
    expect(panel.get_by_role("button", name=zh("Dismiss"))).to_be_visible()
    panel.scroll_into_view_if_needed()
    shot(page, "20-zh-suggestion")
    panel.get_by_role("button", name=zh("Edit", "accept the suggestion, then edit it")).click()
    expect(prompt).to_have_value("黎明时分悬崖上的灯塔，油画，温暖的光")
    prompt.fill("黎明时分悬崖上的灯塔，水彩，温暖的光")
    page.get_by_role("button", name=zh("Generate")).click()
    expect(page.locator("#task-list .task-card")).to_have_count(1)
    task = Task.objects.get(owner=user)
    assert (task.prompt, task.original_prompt) == ("黎明时分悬崖上的灯塔，水彩，温暖的光", "悬崖上的灯塔")
    assert_clean(page)

    # A preset: its Chinese name, its card, and the card of the task it made.
    prompt.fill("雪中的狐狸")
    page.get_by_label(zh("Style preset")).select_option(label="水彩")
    expect(page.locator("#preset-card code")).to_have_text(WATERCOLOUR)
    page.locator("#preset-card").scroll_into_view_if_needed()
    shot(page, "21-zh-preset-card")
    page.get_by_role("button", name=zh("Generate")).click()
    cards = page.locator("#task-list .task-card")
    expect(cards).to_have_count(2)
    expect(cards.first).to_contain_text("水彩")
    assert Task.objects.filter(owner=user, preset_name="水彩").count() == 1
    page.get_by_label(zh("Style preset")).select_option(value="")
    expect(page.locator("#preset-card")).to_be_hidden()
    assert_clean(page)

    # Four variants, side by side; keep the second.
    prompt.fill("荒原上空的红鸢")
    variants = page.locator("#variants")
    variants.locator("summary").click()
    expect(variants.locator("summary")).to_have_text(zh("Variants"))
    variants.get_by_label(zh("The same prompt under these presets:")).check()
    for name in ("摄影", "水彩", "线稿", "像素画"):
        variants.get_by_label(name, exact=True).check()
    variants.scroll_into_view_if_needed()
    shot(page, "22-zh-variants-picker")
    variants.get_by_role("button", name=zh("Make variants")).click()
    set_cards = page.locator(".variant-set .task-card")
    expect(set_cards).to_have_count(4)
    for n in range(4):
        expect(set_cards.nth(n)).to_have_attribute("data-status", "completed", timeout=30_000)
    expect_side_by_side(page, ".variant-set .task-card", 4)
    set_cards.nth(1).get_by_role("button", name="保留这一个").click()
    expect(set_cards.nth(1).locator(".badge-kept")).to_have_text(zh("Kept", "variant"))
    page.locator(".variant-set").scroll_into_view_if_needed()
    shot(page, "23-zh-variant-kept")
    kept = VariantSet.objects.get(owner=user).kept
    assert kept is not None and set(kept.images.values_list("tags__name", flat=True)) == {"kept"}
    assert_clean(page)

    # The Presets page in Chinese.
    page.get_by_role("navigation", name=re.compile(".")).get_by_role(
        "link", name=zh("Presets", "navigation"), exact=True
    ).first.click()
    expect(page).to_have_url(f"{live_server.url}/presets/")
    expect(page.locator("main")).to_contain_text("水彩")
    shot(page, "24-zh-presets-page", full_page=True)
    assert_clean(page)
