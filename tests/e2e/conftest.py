"""Browser tests: Playwright's sync API driving Debian's Chromium against pytest-django's live_server.

Playwright never downloads a browser here: it launches the system Chromium (CHROMIUM_PATH, else
`chromium` on PATH, else /usr/bin/chromium). Without one the browser tests are skipped.

Fixtures
- `browser` (package scope): one headless Chromium for all tests in tests/e2e.
- `page` (function scope): a fresh context (1280×800, no shared cookies) and page; uncaught page
  errors are collected in `page.errors` (a list of str).
Helpers: `sign_in`, `set_marker` / `marker_survives`, `wait_for_loaded_images`.

Why package scope and not session scope: while Playwright's sync API is started, its asyncio loop
counts as *running* in the main thread, so every Django ORM call there raises
SynchronousOnlyOperation (and async_to_sync refuses to run). DJANGO_ALLOW_ASYNC_UNSAFE=true is set
only while the browser lives, and the browser is closed after the last e2e test so that the rest
of the suite runs in a normal thread.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
VIEWPORT = {"width": 1280, "height": 800}
DEFAULT_TIMEOUT_MS = 15_000
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
MARKER = "window.__atelierMarker"


def pytest_collection_modifyitems(config, items) -> None:
    """Every test in tests/e2e drives Chromium: mark it `browser` (pytest.ini), also without its
    module's pytestmark, so that `-m "not browser"` (make test-fast) leaves all of them out."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents and item.get_closest_marker("browser") is None:
            item.add_marker(pytest.mark.browser)


def chromium_path() -> str | None:
    candidates = [os.environ.get("CHROMIUM_PATH"), shutil.which("chromium"), "/usr/bin/chromium"]
    return next((path for path in candidates if path and os.access(path, os.X_OK)), None)


@pytest.fixture(scope="package")
def browser() -> Iterator:
    executable = chromium_path()
    if executable is None:
        pytest.skip("No Chromium found (install Debian's chromium or set CHROMIUM_PATH).")
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser) -> Iterator:
    context = browser.new_context(viewport=VIEWPORT, color_scheme="light", locale="en-US")
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    # Content-Security-Policy violations are reported on the console, not as page errors.
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


def sign_in(page, live_server, user, password: str) -> None:
    """Open the site signed out, get sent to the sign-in page, sign in through the form."""
    from playwright.sync_api import expect

    page.goto(live_server.url + "/")
    expect(page).to_have_url(f"{live_server.url}/accounts/login/?next=/")
    expect(page.get_by_role("heading", name="Sign in to Atelier")).to_be_visible()
    page.get_by_label("Username").fill(user.get_username())
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.get_by_role("heading", name="Create", exact=True)).to_be_visible()


def set_marker(page, value: str = "no-reload") -> str:
    """Leave a value on `window`; it survives htmx swaps but not a navigation or reload."""
    page.evaluate(f"value => {{ {MARKER} = value; }}", value)
    return value


def marker_survives(page, value: str = "no-reload") -> bool:
    return page.evaluate(f"() => {MARKER}") == value


def wait_for_loaded_images(page, selector: str, count: int, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> list[int]:
    """Wait until `count` images match `selector` and each has really decoded (naturalWidth > 0)."""
    page.wait_for_function(
        """([selector, count]) => {
            const images = [...document.querySelectorAll(selector)];
            return images.length === count && images.every(img => img.complete && img.naturalWidth > 0);
        }""",
        arg=[selector, count],
        timeout=timeout_ms,
    )
    return page.eval_on_selector_all(selector, "images => images.map(img => img.naturalWidth)")
