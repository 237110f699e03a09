"""The Usage page in a real browser: the figures, and the 30-day chart actually drawn."""

from __future__ import annotations

from datetime import timedelta
from io import BytesIO

import pytest
from django.utils import timezone
from PIL import Image as PILImage
from playwright.sync_api import expect

from generator.models import Task
from tests.factories import PASSWORD, TaskFactory, UserFactory

from .conftest import marker_survives, set_marker, sign_in

pytestmark = pytest.mark.browser


def test_the_usage_page_draws_the_last_30_days_by_model(page, live_server, settings, tmp_path):
    settings.QUOTA_IMAGES_PER_DAY = 20
    user = UserFactory()
    now = timezone.now()
    for days_ago, model, images in (
        (0, "sketch-v1", 3),
        (0, "sketch-v2", 2),
        (3, "sketch-v1", 4),
        (12, "sketch-v2", 1),
    ):
        TaskFactory(
            owner=user,
            model=model,
            num_images=images,
            status=Task.Status.COMPLETED,
            created_at=now - timedelta(days=days_ago),
        )
    TaskFactory(owner=UserFactory(), model="not-mine", num_images=4, status=Task.Status.COMPLETED)

    sign_in(page, live_server, user, PASSWORD)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Usage").click()
    expect(page.get_by_role("heading", name="Usage", exact=True)).to_be_visible()
    expect(page.locator("#usage-today")).to_contain_text("5 images")
    expect(page.locator("#quota-images_per_day")).to_contain_text("5 of 20 used, 15 left")

    chart = page.locator("#usage-chart svg")
    expect(chart).to_be_visible()
    bars = chart.locator("rect.bar")
    expect(bars).to_have_count(4)  # today's two models stacked, and one bar on two other days
    expect(page.locator(".usage-legend")).to_contain_text("sketch-v1 (offline): 7")
    expect(page.locator(".usage-legend")).to_contain_text("sketch-v2 (offline): 3")
    assert "not-mine" not in page.content()
    box = bars.first.bounding_box()
    assert box is not None and box["width"] > 4 and box["height"] > 4  # drawn, with a size

    shot = tmp_path / "usage-chart.png"
    chart.screenshot(path=str(shot))
    picture = PILImage.open(BytesIO(shot.read_bytes())).convert("RGB")
    colours = picture.getcolors(maxcolors=1 << 16) or []
    # Not blank: the bars' own colours (Okabe–Ito blue and orange) are there in numbers.
    counts = {colour: count for count, colour in colours}
    assert counts.get((0, 114, 178), 0) > 50 and counts.get((230, 159, 0), 0) > 20
    assert page.errors == []


def test_a_quota_refusal_is_explained_next_to_generate_and_the_usage_page_agrees(page, live_server, settings):
    settings.QUOTA_IMAGES_PER_DAY = 1
    user = UserFactory()
    sign_in(page, live_server, user, PASSWORD)
    set_marker(page)
    page.get_by_label("Prompt", exact=True).fill("a paper boat")
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#task-list .task-card")).to_have_count(1)

    page.get_by_role("button", name="Generate").click()
    problem = page.locator("#form-problem")
    expect(problem).to_be_visible()
    expect(problem).to_contain_text("This would go past your quota of 1 image per day. It resets on")
    expect(page.locator("#task-list .task-card")).to_have_count(1)
    assert marker_survives(page), "the refusal should be shown in place, without a reload"
    assert Task.objects.filter(owner=user).count() == 1

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Usage").click()
    expect(page.locator("#quota-images_per_day")).to_contain_text("1 of 1 used, 0 left")
    assert page.errors == []
