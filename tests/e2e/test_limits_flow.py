"""Limits as a person meets them in the browser: the reason appears in place, nothing reloads."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from generator.models import Task
from tests.factories import PASSWORD, UserFactory

from .conftest import marker_survives, set_marker, sign_in

pytestmark = pytest.mark.browser


def test_the_queued_task_cap_is_explained_above_the_form(page, live_server, settings, monkeypatch):
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)  # no worker runs: the first task stays pending
    settings.MAX_QUEUED_TASKS_PER_USER = 1
    user = UserFactory()
    sign_in(page, live_server, user, PASSWORD)
    set_marker(page)
    page.get_by_label("Prompt", exact=True).fill("a paper boat")
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#task-list .task-card")).to_have_count(1)

    page.get_by_role("button", name="Generate").click()
    problem = page.locator("#form-problem")
    expect(problem).to_be_visible()
    expect(problem).to_contain_text("You already have 1 task waiting to run.")
    expect(page.locator("#task-list .task-card")).to_have_count(1)
    assert marker_survives(page)
    assert Task.objects.filter(owner=user).count() == 1

    # Cancelling the waiting task frees the slot; the next submission goes through.
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator(".badge-canceled")).to_have_count(1)
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#task-list .task-card")).to_have_count(2)
    expect(problem).to_be_hidden()
    assert page.errors == []
