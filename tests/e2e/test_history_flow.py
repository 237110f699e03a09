"""The history page in a real browser: a row updating live, filters, infinite scroll, delete."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import factory
import pytest
from django.utils import timezone
from playwright.sync_api import expect

from generator.models import Task
from generator.scheduler.inline import run_task
from generator.services import TaskSettings, create_task
from generator.views.history import HISTORY_PAGE_SIZE
from tests.cluster import wait_for_final
from tests.factories import PASSWORD, FinishedTaskFactory, TaskFactory, UserFactory

from .conftest import marker_survives, set_marker, sign_in, wait_for_loaded_images

pytestmark = pytest.mark.browser


def open_history(page, live_server, query: str = "") -> None:
    page.goto(f"{live_server.url}/history/{query}")
    expect(page.get_by_role("heading", name="History", exact=True)).to_be_visible()


@pytest.mark.cluster
def test_a_pending_row_updates_live_when_the_worker_finishes(page, live_server, start_qcluster):
    user = UserFactory()
    sign_in(page, live_server, user, PASSWORD)
    # Queued while no worker runs yet, so the page surely shows it waiting.
    task = create_task(
        user,
        TaskSettings(
            prompt="a lighthouse in a storm",
            provider="offline",
            model="sketch-v1",
            width=256,
            height=192,
            num_images=2,
            seed=5,
        ),
    )
    row_polls: list[str] = []
    page.on("request", lambda request: "?row=" in request.url and row_polls.append(request.url))
    open_history(page, live_server)
    row = page.locator(f"#task-row-{task.pk}")
    expect(row).to_have_attribute("data-status", "pending")
    expect(row.get_by_role("button", name="Cancel")).to_be_visible()
    set_marker(page)

    start_qcluster(OFFLINE_DELAY_SECONDS=1)
    expect(row).to_have_attribute("data-status", "completed", timeout=30_000)
    expect(row.locator(".badge-completed")).to_have_text("Completed")
    expect(row.get_by_role("button", name="Cancel")).to_have_count(0)
    widths = wait_for_loaded_images(page, f"#task-row-{task.pk} .history-thumbs img", 2)
    assert all(width > 0 for width in widths)
    expect(row.locator(".history-thumbs a[data-modal]")).to_have_count(2)
    assert row_polls, "the row should have polled while its task was active"
    assert marker_survives(page), "the row should update in place, not by reloading the page"
    polls_when_done = len(row_polls)
    page.wait_for_timeout(2_500)
    assert len(row_polls) == polls_when_done, "a finished row must stop polling"
    assert wait_for_final(task, timeout=5).status == Task.Status.COMPLETED
    assert page.errors == []


def test_a_status_filter_and_a_search_narrow_the_list(page, live_server):
    user = UserFactory()
    now = timezone.now()
    for minutes, (status, prompt) in enumerate(
        [("failed", "a red fox"), ("completed", "a red barn"), ("failed", "a blue whale"), ("canceled", "a red kite")]
    ):
        TaskFactory(
            owner=user,
            status=status,
            prompt=prompt,
            created_at=now - timedelta(minutes=minutes),
            error_message="The provider was down." if status == "failed" else "",
        )
    sign_in(page, live_server, user, PASSWORD)
    open_history(page, live_server)
    rows = page.locator("tr.history-row")
    expect(rows).to_have_count(4)

    page.get_by_role("navigation", name="Filter by status").get_by_role("link", name="Failed").click()
    expect(page).to_have_url(f"{live_server.url}/history/?status=failed")
    expect(rows).to_have_count(2)
    expect(rows.locator(".error-reason").first).to_have_text("The provider was down.")

    page.get_by_label("Search prompts").fill("red")
    page.get_by_label("Search prompts").press("Enter")
    expect(page).to_have_url(f"{live_server.url}/history/?q=red&status=failed")
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".prompt a")).to_have_text("a red fox")

    page.get_by_role("navigation", name="Filter by status").get_by_role("link", name="All").click()
    expect(rows).to_have_count(3)  # the search stays
    page.get_by_label("Search prompts").fill("zebra")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("No tasks match “zebra”")).to_be_visible()
    page.locator("main").get_by_role("link", name="Clear filters").first.click()
    expect(rows).to_have_count(4)
    assert page.errors == []


def test_scrolling_to_the_end_loads_older_tasks(page, live_server):
    user = UserFactory()
    studies = [f"study {n}" for n in range(HISTORY_PAGE_SIZE + 7)]  # newest first
    FinishedTaskFactory.bulk_create_batch(len(studies), owner=user, status="failed", prompt=factory.Iterator(studies))
    sign_in(page, live_server, user, PASSWORD)
    open_history(page, live_server)
    rows = page.locator("tr.history-row")
    expect(rows).to_have_count(HISTORY_PAGE_SIZE)
    set_marker(page)
    page.get_by_role("link", name="Older tasks →").scroll_into_view_if_needed()
    expect(rows).to_have_count(HISTORY_PAGE_SIZE + 7)
    expect(page.get_by_role("link", name="Older tasks →")).to_have_count(0)
    texts = rows.locator(".prompt a").all_text_contents()
    assert [text.strip() for text in texts] == [f"study {n}" for n in range(HISTORY_PAGE_SIZE + 7)]
    assert marker_survives(page)
    assert page.errors == []


def test_delete_a_task_from_its_row(page, live_server):
    user = UserFactory()
    keep = TaskFactory(owner=user, status="failed", prompt="keep me", created_at=timezone.now() - timedelta(hours=1))
    doomed = TaskFactory(owner=user, prompt="delete me", num_images=2)
    run_task(str(doomed.pk))
    doomed.refresh_from_db()
    paths = [Path(field.path) for image in doomed.images.all() for field in (image.file, image.thumbnail)]
    assert len(paths) == 4 and all(path.is_file() for path in paths)

    sign_in(page, live_server, user, PASSWORD)
    open_history(page, live_server)
    set_marker(page)
    row = page.locator(f"#task-row-{doomed.pk}")
    delete = row.get_by_role("button", name="Delete task")
    expect(delete).to_be_hidden()  # asks first
    row.locator("summary", has_text="Delete…").click()
    expect(row.get_by_text("Delete this task and its 2 images? This cannot be undone.")).to_be_visible()
    delete.click()

    expect(row).to_have_count(0)
    expect(page.locator("#history-status")).to_have_text("Task deleted with its 2 images.")
    expect(page.locator(f"#task-row-{keep.pk}")).to_be_visible()
    expect(page.locator(f"#task-row-{keep.pk} .prompt a")).to_be_focused()  # focus not lost
    assert marker_survives(page), "the row should go in place, without a page load"
    assert not Task.objects.filter(pk=doomed.pk).exists()
    assert not any(path.exists() for path in paths)
    assert Task.objects.filter(pk=keep.pk).exists()
    assert page.errors == []


def test_deleting_the_last_match_of_a_search_shows_the_no_match_sentence(page, live_server):
    user = UserFactory()
    FinishedTaskFactory(owner=user, prompt="a lighthouse", num_images=1)
    phone = FinishedTaskFactory(owner=user, prompt="an old phone", num_images=1)

    sign_in(page, live_server, user, PASSWORD)
    open_history(page, live_server, "?q=phone")
    set_marker(page)
    row = page.locator(f"#task-row-{phone.pk}")
    row.locator("summary", has_text="Delete…").click()
    row.get_by_role("button", name="Delete task").click()

    expect(page.locator("#history-status")).to_have_text("Task deleted with its 1 image.")
    expect(page.locator("table.history-table")).to_have_count(0)  # no headers over nothing
    expect(page.locator("#history-list")).to_contain_text("No tasks match “phone”.")
    expect(page.get_by_role("link", name="Clear filters").last).to_be_visible()
    assert marker_survives(page), "in place, without a page load"
    assert page.errors == []
