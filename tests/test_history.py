"""The history page: filters, keyset pages, live rows, cancel, retry and delete."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from generator.lib.keyset import decode_cursor, encode_cursor
from generator.models import Image, Task
from generator.reasons import Reason
from generator.scheduler import steps
from generator.views.history import HISTORY_PAGE_SIZE
from generator.views.tasks import RETRIED

from .factories import FinishedTaskFactory, TaskFactory, claimed

HISTORY = reverse("generator:history")
ROW_ID = re.compile(r'id="task-row-([0-9a-f-]{36})"')
NEXT = re.compile(r'<a href="([^"]+)" rel="next"')


def rows(response) -> list[str]:
    assert response.status_code == 200, response.status_code
    return ROW_ID.findall(response.content.decode())


def next_url(response) -> str | None:
    match = NEXT.search(response.content.decode())
    return match.group(1).replace("&amp;", "&") if match else None


# --- filters ---------------------------------------------------------------------------


@pytest.fixture
def mixed(user, other_user) -> dict[str, Task]:
    """One task per status, with prompts to search, plus another person's matching task."""
    now = timezone.now()
    specs = {
        "pending": ("a red fox at dawn", ""),
        "processing": ("a blue whale", "red"),
        "retrying": ("a green forest", ""),
        "completed": ("a red barn", "blurry"),
        "failed": ("a yellow submarine", ""),
        "canceled": ("a RED balloon", ""),
    }
    tasks = {}
    for offset, (status, (prompt, negative)) in enumerate(specs.items()):
        tasks[status] = TaskFactory(
            owner=user,
            status=status,
            prompt=prompt,
            negative_prompt=negative,
            created_at=now - timedelta(minutes=offset),
        )
    TaskFactory(owner=other_user, status="completed", prompt="someone else's red car")
    return tasks


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ["pending", "processing", "retrying", "completed", "failed", "canceled"]),
        ({"status": "all"}, ["pending", "processing", "retrying", "completed", "failed", "canceled"]),
        ({"status": "active"}, ["pending", "processing", "retrying"]),
        ({"status": "completed"}, ["completed"]),
        ({"status": "failed"}, ["failed"]),
        ({"status": "canceled"}, ["canceled"]),
        ({"q": "red"}, ["pending", "processing", "completed", "canceled"]),  # prompt or negative, any case
        ({"q": "  RED  "}, ["pending", "processing", "completed", "canceled"]),
        ({"q": "blurry"}, ["completed"]),  # the negative prompt alone
        ({"q": "red", "status": "active"}, ["pending", "processing"]),
        ({"q": "red", "status": "canceled"}, ["canceled"]),
        ({"q": "red", "status": "failed"}, []),
        ({"q": "nothing like this"}, []),
        ({"status": "bogus"}, ["pending", "processing", "retrying", "completed", "failed", "canceled"]),
        ({"q": "red\x00"}, ["pending", "processing", "completed", "canceled"]),
    ],
)
def test_filters_combine(auth_client, mixed, query, expected):
    response = auth_client.get(HISTORY, query)
    assert rows(response) == [str(mixed[status].pk) for status in expected]
    assert "someone else" not in response.content.decode()


def test_filters_stay_in_the_links(auth_client, mixed):
    html = auth_client.get(HISTORY, {"status": "active", "q": "red"}).content.decode()
    # The status links keep the text; the search form keeps the status.
    assert 'href="/history/?status=failed&amp;q=red"' in html
    assert 'href="/history/?q=red"' in html  # "All"
    assert '<input type="hidden" name="status" value="active">' in html
    assert 'value="red"' in html
    assert html.count('aria-current="true"') == 1


def test_an_unknown_status_says_so(auth_client, mixed):
    html = auth_client.get(HISTORY, {"status": "<b>bogus</b>"}).content.decode()
    assert "Unknown status filter" in html and "<b>bogus" not in html


def test_no_match_offers_to_clear_the_filters(auth_client, mixed):
    html = auth_client.get(HISTORY, {"q": "zebra", "status": "failed"}).content.decode()
    assert "No tasks match “zebra” among failed tasks" in html
    assert f'<a href="{HISTORY}">Clear filters</a>' in html


def test_no_tasks_at_all_points_to_create(auth_client, other_user):
    TaskFactory(owner=other_user)
    html = auth_client.get(HISTORY).content.decode()
    assert "No tasks yet." in html and f'href="{reverse("generator:create")}">Create your first image' in html
    assert "<table" not in html


def test_the_page_shows_what_the_task_was(auth_client, user):
    task = TaskFactory(owner=user, prompt="a lighthouse", negative_prompt="fog", seed=None, num_images=2)
    task.mark_failed("content_rejected", "The provider rejected this prompt.")
    html = auth_client.get(HISTORY).content.decode()
    assert "a lighthouse" in html and "Negative:</span> fog" in html
    assert "offline · sketch-v1 · 256×192 · 2 images · seed random" in html
    assert "The provider rejected this prompt." in html
    assert f'action="{reverse("generator:task_retry", args=[task.pk])}"' in html


def test_thumbnails_open_the_image_page_in_the_modal(auth_client, completed_task):
    html = auth_client.get(HISTORY).content.decode()
    for image in completed_task.ordered_images:
        detail = reverse("generator:image_detail", args=[image.pk])
        assert f'<a href="{detail}" data-modal data-full="{image.url}">' in html
        assert f'src="{image.thumbnail_url}" width="{image.width}" height="{image.height}"' in html
    assert html.count('loading="lazy"') == 2
    assert f'alt="{completed_task.prompt}"' in html


# --- keyset pages ----------------------------------------------------------------------


def walk_pages(client, url: str) -> list[list[str]]:
    pages = []
    while url:
        response = client.get(url)
        pages.append(rows(response))
        url = next_url(response)
        assert len(pages) < 100
    return pages


@pytest.mark.parametrize("same_time", [False, True], ids=["distinct-times", "equal-times"])
def test_pages_have_no_gaps_and_no_duplicates(auth_client, user, same_time):
    step = timedelta(0) if same_time else timedelta(seconds=1)
    tasks = FinishedTaskFactory.bulk_create_batch(HISTORY_PAGE_SIZE * 2 + 3, owner=user, step=step)
    pages = walk_pages(auth_client, HISTORY)
    assert [len(page) for page in pages] == [HISTORY_PAGE_SIZE, HISTORY_PAGE_SIZE, 3]
    seen = [pk for page in pages for pk in page]
    assert len(seen) == len(set(seen)) == len(tasks)
    expected = sorted(tasks, key=lambda task: (task.created_at, str(task.pk).replace("-", "")), reverse=True)
    if not same_time:
        assert seen == [str(task.pk) for task in expected]


def test_new_tasks_do_not_shift_the_next_page(auth_client, user):
    FinishedTaskFactory.bulk_create_batch(HISTORY_PAGE_SIZE + 5, owner=user)
    first = auth_client.get(HISTORY)
    shown = rows(first)
    FinishedTaskFactory.bulk_create_batch(
        3, owner=user, newest=timezone.now() + timedelta(minutes=1)
    )  # newer than everything
    rest = rows(auth_client.get(next_url(first)))
    assert len(rest) == 5 and not set(rest) & set(shown)


def test_pages_keep_the_filters(auth_client, user):
    FinishedTaskFactory.bulk_create_batch(HISTORY_PAGE_SIZE + 2, owner=user, prompt="a cat", status=Task.Status.FAILED)
    FinishedTaskFactory.bulk_create_batch(10, owner=user, prompt="a cat", status=Task.Status.COMPLETED)
    FinishedTaskFactory.bulk_create_batch(10, owner=user, prompt="a dog", status=Task.Status.FAILED)
    first = auth_client.get(HISTORY, {"status": "failed", "q": "cat"})
    url = next_url(first)
    assert "status=failed" in url and "q=cat" in url and "after=" in url
    pages = walk_pages(auth_client, f"{HISTORY}?status=failed&q=cat")
    assert [len(page) for page in pages] == [HISTORY_PAGE_SIZE, 2]
    html = auth_client.get(url).content.decode()
    assert "← Newest tasks" in html and 'href="/history/?status=failed&amp;q=cat"' in html


@pytest.mark.parametrize(
    "token",
    [
        "",
        "x",
        "!!!",
        "bm90IGEgY3Vyc29y",
        "MjAyNC0wMS0wMXxub3QtYS11dWlk",
        "9" * 5000,
        "%00",
        "\x00",
        "%ED%A0%80",
        "MjAyNC0wMS0wMVQwMDowMDowMHwxMjM0NTY3OC0xMjM0LTEyMzQtMTIzNC0xMjM0NTY3ODkwMTI",
    ],  # naive datetime
)
def test_an_invalid_cursor_shows_the_first_page(auth_client, user, token):
    tasks = FinishedTaskFactory.bulk_create_batch(3, owner=user)
    response = auth_client.get(HISTORY, {"after": token})
    assert rows(response) == [str(task.pk) for task in tasks]
    if token:
        assert "That page link is not valid" in response.content.decode()


def test_the_cursor_round_trips(user):
    task = FinishedTaskFactory.bulk_create_batch(1, owner=user)[0]
    assert decode_cursor(encode_cursor(task)) == (task.created_at, task.pk)


def test_a_cursor_past_the_end_says_there_is_nothing_older(auth_client, user):
    tasks = FinishedTaskFactory.bulk_create_batch(2, owner=user)
    html = auth_client.get(HISTORY, {"after": encode_cursor(tasks[-1])}).content.decode()
    assert "No older tasks." in html and not ROW_ID.search(html)


def test_the_next_page_comes_as_rows_for_infinite_scroll(auth_client, user):
    FinishedTaskFactory.bulk_create_batch(HISTORY_PAGE_SIZE + 1, owner=user)
    url = next_url(auth_client.get(HISTORY))
    response = auth_client.get(url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="history-more")
    html = response.content.decode()
    assert html.lstrip().startswith("<tr") and "<html" not in html and len(ROW_ID.findall(html)) == 1
    assert "HX-Request" in response["Vary"]


@pytest.mark.parametrize("images_each", [1, 3])
def test_the_page_runs_the_same_queries_for_10_and_500_tasks(auth_client, user, other_user, images_each):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert auth_client.get(HISTORY, {"q": "study"}).status_code == 200
        return len(queries)

    FinishedTaskFactory.bulk_create_batch(10, owner=user, images_each=images_each)
    FinishedTaskFactory.bulk_create_batch(50, owner=other_user, images_each=images_each)
    with_10 = count()
    FinishedTaskFactory.bulk_create_batch(490, owner=user, images_each=images_each)
    assert Image.objects.filter(owner=user).count() == 500 * images_each
    assert count() == with_10
    # and the second page too
    second_page = next_url(auth_client.get(HISTORY, {"q": "study"}))
    with CaptureQueriesContext(connection) as queries:
        assert len(rows(auth_client.get(second_page))) == HISTORY_PAGE_SIZE
    assert len(queries) == with_10


def test_the_page_query_count_is_small(auth_client, user, django_assert_max_num_queries):
    FinishedTaskFactory.bulk_create_batch(30, owner=user, images_each=2)
    with django_assert_max_num_queries(4):  # session, user, tasks, their images
        auth_client.get(HISTORY)


# --- live rows -------------------------------------------------------------------------


def row_url(task: Task) -> str:
    return f"{HISTORY}?row={task.pk}"


def test_an_active_row_polls_and_a_finished_one_stops(auth_client, user):
    task = TaskFactory(owner=user)
    html = auth_client.get(HISTORY).content.decode()
    assert f'hx-get="{row_url(task)}" hx-trigger="load delay:2s" hx-swap="outerHTML"' in html
    assert '<meta http-equiv="refresh"' in html  # the page refreshes itself without JavaScript

    row = auth_client.get(row_url(task), HTTP_HX_REQUEST="true").content.decode()
    assert row.lstrip().startswith(f'<tr id="task-row-{task.pk}"') and "hx-get" in row and "<html" not in row

    claimed(task)
    row = auth_client.get(row_url(task), HTTP_HX_REQUEST="true").content.decode()
    assert 'data-status="processing"' in row and "hx-trigger" in row

    task.mark_completed()
    row = auth_client.get(row_url(task), HTTP_HX_REQUEST="true").content.decode()
    assert 'data-status="completed"' in row and "hx-get" not in row and "hx-trigger" not in row
    assert '<meta http-equiv="refresh"' not in auth_client.get(HISTORY).content.decode()


def test_a_retrying_row_says_when_it_tries_next(auth_client, user, settings):
    settings.TIME_ZONE = "UTC"
    task = claimed(TaskFactory(owner=user))
    why = Reason(steps.RETRYING, {"reason": "The provider timed out.", "delay": "4", "attempt": 1, "attempts": 3})
    assert task.mark_retrying("timeout", why, datetime(2026, 12, 4, 7, 5, 9, tzinfo=UTC))
    row = auth_client.get(row_url(task), HTTP_HX_REQUEST="true").content.decode()
    assert "Trying again in 4 s (attempt 1 of 3)." in row and "Next attempt at 07:05:09" in row
    assert "hx-trigger" in row


def test_a_row_watching_its_vendor_job_says_so_and_offers_cancel(auth_client, user):
    task = claimed(TaskFactory(owner=user))
    assert task.watch_job({"state": {"id": "job-1"}}, timezone.now() + timedelta(seconds=3), progress=10)
    row = auth_client.get(row_url(task), HTTP_HX_REQUEST="true").content.decode()
    assert "Generating at the provider (job submitted)." in row and "Generating… " not in row
    assert f'action="{reverse("generator:task_cancel", args=[task.pk])}"' in row and "hx-trigger" in row
    response = auth_client.post(reverse("generator:task_cancel", args=[task.pk]), {"next": HISTORY})
    assert response.status_code == 302 and Task.objects.get(pk=task.pk).status == Task.Status.CANCELED


def test_a_completed_row_shows_its_note_and_where_it_ran_first(auth_client, user):
    task = claimed(TaskFactory(owner=user, provider="openai", model="dall-e-3", num_images=3))
    moved_from = {"provider": "openai", "model": "dall-e-3", "code": "timeout", "reason": None, "attempts": 2}
    assert task.move_to("offline", "sketch-v1", {}, moved_from)
    assert claimed(task).mark_completed(note=Reason(steps.PARTIAL, {"failed": 1, "wanted": 3}))
    row = auth_client.get(row_url(task), HTTP_HX_REQUEST="true").content.decode()
    assert "1 of 3 pictures failed at the provider; the others were kept." in row
    assert "First tried openai (dall-e-3): timeout" in row  # no stored reason: its code


@pytest.mark.parametrize("status", ["completed", "failed", "canceled"])
def test_finished_rows_do_not_poll(auth_client, user, status):
    task = TaskFactory(owner=user, status=status)
    assert "hx-trigger" not in auth_client.get(row_url(task)).content.decode()


def test_the_polled_row_keeps_the_page_address_for_its_forms(auth_client, user):
    task = TaskFactory(owner=user)
    row = auth_client.get(
        row_url(task), HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL="http://testserver/history/?status=active"
    ).content.decode()
    assert '<input type="hidden" name="next" value="/history/?status=active">' in row


@pytest.mark.parametrize("value", ["not-a-uuid", "", "%00"])
def test_a_bad_row_id_is_not_found(auth_client, value):
    assert auth_client.get(HISTORY, {"row": value}).status_code == 404


def test_another_persons_row_is_not_found(other_client, user):
    task = TaskFactory(owner=user)
    assert other_client.get(row_url(task)).status_code == 404


# --- cancel ----------------------------------------------------------------------------


def test_cancel_from_the_history_comes_back_to_it(auth_client, user):
    task = TaskFactory(owner=user)
    back = "/history/?status=active&q=lighthouse"
    html = auth_client.get(back).content.decode()
    assert f'action="{reverse("generator:task_cancel", args=[task.pk])}"' in html
    response = auth_client.post(reverse("generator:task_cancel", args=[task.pk]), {"next": back})
    assert response.status_code == 302 and response["Location"] == back
    assert Task.objects.get(pk=task.pk).status == Task.Status.CANCELED


@pytest.mark.parametrize("status", ["completed", "failed", "canceled"])
def test_only_unfinished_tasks_offer_cancel(auth_client, user, status):
    task = TaskFactory(owner=user, status=status)
    assert reverse("generator:task_cancel", args=[task.pk]) not in auth_client.get(HISTORY).content.decode()


def test_a_generating_task_offers_stop(auth_client, user):
    task = TaskFactory(owner=user, status="processing")
    html = auth_client.get(HISTORY).content.decode()
    assert reverse("generator:task_cancel", args=[task.pk]) in html and ">Stop</button>" in html


# --- retry -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["failed", "canceled"])
def test_retry_creates_a_new_task_with_the_same_settings(auth_client, user, status, django_capture_on_commit_callbacks):
    old = TaskFactory(
        owner=user,
        status=status,
        prompt="a cat",
        negative_prompt="dog",
        seed=7,
        num_images=2,
        steps=20,
        guidance_scale=6.5,
        created_at=timezone.now() - timedelta(hours=1),
    )
    with django_capture_on_commit_callbacks(execute=False):  # not run: the new task stays pending
        response = auth_client.post(
            reverse("generator:task_retry", args=[old.pk]), {"next": "/history/?status=failed", "q": "cat"}
        )
    assert response.status_code == 302 and response["Location"] == "/history/?q=cat"
    new = Task.objects.exclude(pk=old.pk).get()
    fields = (
        "owner",
        "provider",
        "model",
        "prompt",
        "negative_prompt",
        "width",
        "height",
        "num_images",
        "steps",
        "guidance_scale",
        "seed",
    )
    assert [getattr(new, f) for f in fields] == [getattr(old, f) for f in fields]
    assert new.status == Task.Status.PENDING and Task.objects.get(pk=old.pk).status == status  # the old one stays
    page = auth_client.get(response["Location"])
    assert rows(page)[0] == str(new.pk)
    assert RETRIED in page.content.decode()


def test_retry_with_htmx_sends_the_browser_to_the_history(auth_client, user):
    old = TaskFactory(owner=user, status="failed")
    response = auth_client.post(reverse("generator:task_retry", args=[old.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and response["HX-Redirect"] == HISTORY
    assert Task.objects.count() == 2


@pytest.mark.parametrize("status", ["pending", "processing", "retrying", "completed"])
def test_retry_is_refused_for_other_statuses(auth_client, user, status):
    task = TaskFactory(owner=user, status=status)
    response = auth_client.post(reverse("generator:task_retry", args=[task.pk]), follow=True)
    assert "Only failed or canceled tasks can be retried" in response.content.decode()
    assert Task.objects.count() == 1


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_retry_is_refused_at_the_queued_task_cap(auth_client, user, settings, htmx):
    settings.MAX_QUEUED_TASKS_PER_USER = 2
    failed = TaskFactory(owner=user, status="failed")
    TaskFactory.create_batch(2, owner=user)
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    response = auth_client.post(reverse("generator:task_retry", args=[failed.pk]), **headers)
    assert response.status_code == 429 and response["Retry-After"]
    assert "You already have 2 tasks waiting to run." in response.content.decode()
    if htmx:
        assert response["HX-Retarget"] == "#form-problem"  # the history page has that box
    else:  # the history again, with the message and nothing else wrong
        html = response.content.decode()
        assert "<title>History" in html and "Describe the picture" not in html
        assert len(ROW_ID.findall(html)) == 3
    assert Task.objects.count() == 3


def test_the_history_page_has_the_box_for_the_cap_message(auth_client, user):
    TaskFactory(owner=user, status="failed")
    assert '<div id="form-problem"' in auth_client.get(HISTORY).content.decode()


def test_another_persons_task_cannot_be_retried(other_client, user):
    task = TaskFactory(owner=user, status="failed")
    assert other_client.post(reverse("generator:task_retry", args=[task.pk])).status_code == 404
    assert Task.objects.count() == 1


# --- delete ----------------------------------------------------------------------------


def files_of(task: Task) -> list[Path]:
    return [Path(field.path) for image in task.images.all() for field in (image.file, image.thumbnail)]


def test_delete_asks_first_without_javascript(auth_client, completed_task):
    url = reverse("generator:task_delete", args=[completed_task.pk])
    html = auth_client.get(HISTORY).content.decode()
    assert '<details class="history-delete">' in html and 'name="confirm" value="yes"' in html
    response = auth_client.post(url, {"next": "/history/?q=light"})  # no confirm field
    assert response.status_code == 200
    html = response.content.decode()
    assert "Delete this task?" in html and "Its 2 images will be deleted too." in html
    assert 'name="confirm" value="yes"' in html and 'href="/history/?q=light">Keep it' in html
    assert Task.objects.filter(pk=completed_task.pk).exists()
    assert all(path.is_file() for path in files_of(completed_task))


def test_delete_removes_the_rows_then_the_files(auth_client, user, completed_task, django_capture_on_commit_callbacks):
    other = TaskFactory(owner=user, status="failed")
    paths = files_of(completed_task)
    assert len(paths) == 4 and all(path.is_file() for path in paths)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = auth_client.post(
            reverse("generator:task_delete", args=[completed_task.pk]),
            {"confirm": "yes", "next": "/history/?status=completed"},
        )
    assert response.status_code == 302 and response["Location"] == "/history/?status=completed"
    assert not Task.objects.filter(pk=completed_task.pk).exists()
    assert not Image.objects.filter(task_id=completed_task.pk).exists()
    assert all(path.is_file() for path in paths)  # not before the commit
    for callback in callbacks:
        callback()
    assert not any(path.exists() for path in paths)
    assert Task.objects.filter(pk=other.pk).exists()
    assert "Task deleted with its 2 images." in auth_client.get(HISTORY).content.decode()


def test_delete_with_htmx_removes_the_row_in_place(
    auth_client, user, completed_task, django_capture_on_commit_callbacks
):
    kept = TaskFactory(owner=user, status="failed")  # the page still lists a task afterwards
    paths = files_of(completed_task)
    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client.post(
            reverse("generator:task_delete", args=[completed_task.pk]), {"confirm": "yes"}, HTTP_HX_REQUEST="true"
        )
    assert response.status_code == 200
    html = response.content.decode().strip()
    # Nothing for the row (outerHTML: it goes), and the news in the status line.
    assert html == '<p id="history-status" hx-swap-oob="innerHTML">Task deleted with its 2 images.</p>'
    assert list(Task.objects.all()) == [kept] and not any(path.exists() for path in paths)


def test_an_off_site_next_is_ignored(auth_client, user):
    task = TaskFactory(owner=user, status="failed")
    response = auth_client.post(
        reverse("generator:task_delete", args=[task.pk]), {"confirm": "yes", "next": "https://evil.example/"}
    )
    assert response["Location"] == HISTORY


def test_another_persons_task_cannot_be_deleted(other_client, completed_task, django_capture_on_commit_callbacks):
    paths = files_of(completed_task)
    with django_capture_on_commit_callbacks(execute=True):
        response = other_client.post(reverse("generator:task_delete", args=[completed_task.pk]), {"confirm": "yes"})
    assert response.status_code == 404
    assert Task.objects.filter(pk=completed_task.pk).exists() and completed_task.images.count() == 2
    assert all(path.is_file() for path in paths)


@pytest.mark.parametrize("name", ["generator:task_retry", "generator:task_delete"])
def test_row_actions_need_post(auth_client, user, name):
    task = TaskFactory(owner=user, status="failed")
    assert auth_client.get(reverse(name, args=[task.pk])).status_code == 405
