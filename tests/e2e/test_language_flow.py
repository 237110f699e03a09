"""The language in a real browser: a Chinese browser gets the Chinese interface, scripts
included, and the switcher in the header changes it for good."""

from __future__ import annotations

import re

import pytest
from django.utils import translation
from playwright.sync_api import expect

from tests.factories import PASSWORD, ImageFactory, UserFactory

from .conftest import DEFAULT_TIMEOUT_MS, VIEWPORT

pytestmark = pytest.mark.browser
NO_LATIN = re.compile(r"^[^A-Za-z]+$")


def zh(message: str) -> str:
    with translation.override("zh-hans"):
        return translation.gettext(message)


@pytest.fixture
def chinese_page(browser):
    context = browser.new_context(viewport=VIEWPORT, color_scheme="light", locale="zh-CN")
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.on(
        "console",
        lambda message: (
            message.type == "error" and "Content Security Policy" in message.text and page.errors.append(message.text)
        ),
    )
    try:
        yield page
    finally:
        context.close()


def test_a_chinese_browser_gets_chinese_pages_and_scripts_and_can_switch(chinese_page, live_server):
    page = chinese_page
    user = UserFactory()
    ImageFactory.bulk_create_batch(3, owner=user, files=True, task__prompt="港口的黄昏")

    page.goto(live_server.url + "/accounts/login/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    page.get_by_label(zh("Username")).fill(user.get_username())
    page.get_by_label(zh("Password")).fill(PASSWORD)
    page.locator("form.stack button[type=submit]").click()
    expect(page).to_have_url(f"{live_server.url}/")

    page.get_by_role("navigation").get_by_role("link", name=zh("Gallery")).click()
    boxes = page.locator('#gallery-grid input[name="image"]')
    expect(boxes).to_have_count(3)
    boxes.nth(0).check()
    boxes.nth(1).check()
    # The count is written by static/js/gallery.js, from the JavaScript catalogue.
    count = page.locator("#selection-count")
    expect(count).to_contain_text("2")
    expect(count).to_have_text(NO_LATIN)

    # The switcher (a select that applies at once) brings English back, and it stays.
    page.locator("#language-select").select_option("en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page).to_have_url(f"{live_server.url}/gallery/")
    expect(page.get_by_role("heading", name="Gallery")).to_be_visible()
    page.goto(live_server.url + "/history/")
    expect(page.get_by_role("heading", name="History")).to_be_visible()
    assert page.errors == []
