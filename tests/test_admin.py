from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import factory
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from generator.admin import overview as admin_overview
from generator.models import Image, Task
from generator.ops import health, schedules
from generator.reasons import Reason
from generator.scheduler import steps
from generator.services import TaskSettings, settings_of

from .factories import FinishedTaskFactory, TagFactory, TaskFactory, UserFactory, claimed

HOSTILE = "<img src=x onerror=alert(1)>"
CHANGELIST = "admin:generator_task_changelist"


@pytest.fixture
def staff_client(client, db):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def stored_files(task: Task) -> list[Path]:
    return [Path(image.file.path) for image in task.images.all()] + [
        Path(image.thumbnail.path) for image in task.images.all()
    ]


def run_action(client, action: str, tasks, *, url_name: str = CHANGELIST, **extra):
    data = {"action": action, "_selected_action": [str(task.pk) for task in tasks], **extra}
    return client.post(reverse(url_name), data, follow=True)


def messages_of(response) -> str:
    return " ".join(str(message) for message in get_messages(response.wsgi_request))


def changelist_ids(client, **query) -> set:
    response = client.get(reverse(CHANGELIST), query)
    assert response.status_code == 200
    return {task.pk for task in response.context["cl"].result_list}


# --- lists, pages, previews -------------------------------------------------------------------


@pytest.mark.parametrize("model", ["task", "image", "tag"])
def test_admin_lists_render(staff_client, completed_task, model):
    response = staff_client.get(reverse(f"admin:generator_{model}_changelist"))
    assert response.status_code == 200


def test_admin_shows_image_thumbnails_staff_may_open(staff_client, completed_task):
    image = completed_task.images.first()
    html = staff_client.get(reverse("admin:generator_image_changelist")).content.decode()
    assert image.thumbnail_url in html
    assert staff_client.get(image.thumbnail_url).status_code == 200


def test_admin_thumbnails_are_sized_with_attributes_not_styles(staff_client, completed_task):
    for url in (
        reverse("admin:generator_image_changelist"),
        reverse("admin:generator_task_change", args=[completed_task.pk]),
    ):
        html = staff_client.get(url).content.decode()
        thumbnails = [part for part in html.split("<img ")[1:] if "/thumbnail" in part.split(">")[0]]
        assert thumbnails
        for tag in thumbnails:
            attributes = tag.split(">")[0]
            assert 'width="' in attributes and 'height="' in attributes and "style=" not in attributes


def test_admin_task_page_has_images_inline(staff_client, completed_task):
    html = staff_client.get(reverse("admin:generator_task_change", args=[completed_task.pk])).content.decode()
    assert all(image.thumbnail_url in html for image in completed_task.images.all())


def test_image_list_shows_owner_task_link_tags_and_size(staff_client, completed_task):
    image = completed_task.ordered_images[0]
    image.tags.add(TagFactory(owner=completed_task.owner, name="seascape"))
    html = staff_client.get(reverse("admin:generator_image_changelist")).content.decode()
    assert reverse("admin:generator_task_change", args=[completed_task.pk]) in html
    assert "seascape" in html
    assert f"{image.width}×{image.height}" in html
    assert completed_task.owner.username in html


def test_image_change_page_offers_only_the_owners_tags(staff_client, completed_task, other_user):
    TagFactory(owner=completed_task.owner, name="mine")
    TagFactory(owner=other_user, name="someone-elses")
    image = completed_task.images.first()
    response = staff_client.get(reverse("admin:generator_image_change", args=[image.pk]))
    choices = {tag.name for tag in response.context["adminform"].form.fields["tags"].queryset}
    assert choices == {"mine"}


def test_tag_list_counts_images(staff_client, completed_task):
    tag = TagFactory(owner=completed_task.owner, name="lighthouses")
    for image in completed_task.images.all():
        image.tags.add(tag)
    response = staff_client.get(reverse("admin:generator_tag_changelist"))
    row = next(row for row in response.context["cl"].result_list if row.pk == tag.pk)
    assert row.image_count == 2


def test_tasks_and_images_cannot_be_added_by_hand(staff_client, db):
    assert staff_client.get(reverse("admin:generator_task_add")).status_code == 403
    assert staff_client.get(reverse("admin:generator_image_add")).status_code == 403


def test_task_change_page_shows_the_schedulers_fields_read_only(staff_client, db):
    task = claimed(TaskFactory(provider="dashscope", model="wanx2.1-t2i-turbo"), worker="web-1:4242")
    moved_from = {"provider": "dashscope", "model": "wanx2.1-t2i-turbo", "code": "timeout", "reason": None}
    assert task.move_to("offline", "sketch-v1", {}, moved_from)
    claimed(task, worker="web-1:4242")
    assert task.watch_job({"state": {"id": "job-77"}, "interval": 2}, timezone.now() + timedelta(seconds=2))
    Task.objects.filter(pk=task.pk).update(
        held_by="web-2:99",
        heartbeat_at=timezone.now(),
        note=Reason(steps.PARTIAL, {"failed": 1, "wanted": 2}).as_json(),
    )
    url = reverse("admin:generator_task_change", args=[task.pk])
    response = staff_client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    for label in ("Next attempt", "Held by", "Heartbeat", "Provider job", "Failed over from", "Note"):
        assert f"<label>{label}:</label>" in html, label
    assert "web-2:99" in html and "job-77" in html and "wanx2.1-t2i-turbo" in html
    assert "First tried dashscope (wanx2.1-t2i-turbo): timeout" in html
    assert "1 of 2 pictures failed at the provider; the others were kept." in html
    form_fields = response.context["adminform"].form.fields
    assert not {"next_attempt_at", "held_by", "heartbeat_at", "provider_job", "failed_over_from", "note"} & set(
        form_fields
    )
    staff_client.post(url, {"held_by": "", "note": "null", "provider_job": "null"})
    task.refresh_from_db()
    assert task.held_by == "web-2:99" and task.provider_job["state"] == {"id": "job-77"} and task.note


def test_task_change_page_is_read_only(staff_client, db):
    task = TaskFactory(status=Task.Status.PENDING)
    url = reverse("admin:generator_task_change", args=[task.pk])
    staff_client.post(url, {"status": "completed", "prompt": "changed", "owner": task.owner_id})
    task.refresh_from_db()
    assert task.status == Task.Status.PENDING and task.prompt != "changed"


# --- escaping -----------------------------------------------------------------------------------


def test_admin_escapes_prompts(staff_client):
    TaskFactory(prompt=HOSTILE)
    html = staff_client.get(reverse(CHANGELIST)).content.decode()
    assert "<img src=x onerror" not in html
    assert "&lt;img src=x onerror" in html


def test_admin_escapes_prompts_on_change_pages(staff_client, user):
    task = TaskFactory(owner=user, prompt=HOSTILE, num_images=1)
    from generator.scheduler.inline import run_task

    run_task(str(task.pk))
    image = task.images.get()
    for url in (
        reverse("admin:generator_task_change", args=[task.pk]),
        reverse("admin:generator_image_change", args=[image.pk]),
        reverse("admin:generator_image_changelist"),
        reverse("admin:generator_task_delete", args=[task.pk]),
    ):
        html = staff_client.get(url).content.decode()
        assert "<img src=x onerror" not in html, url
        assert "&lt;img src=x onerror" in html, url


# --- search and filters -------------------------------------------------------------------------


def test_admin_search_and_filters(staff_client, completed_task):
    url = reverse(CHANGELIST)
    assert staff_client.get(url, {"q": "lighthouse", "status__exact": "completed"}).status_code == 200


def test_search_by_exact_id(staff_client, db):
    wanted, other = TaskFactory(), TaskFactory()
    assert changelist_ids(staff_client, q=str(wanted.pk)) == {wanted.pk}
    assert changelist_ids(staff_client, q=str(other.pk)) == {other.pk}
    assert changelist_ids(staff_client, q=str(wanted.pk)[:8]) == set()  # exact, not a prefix


def test_search_by_owner_and_prompt(staff_client, db):
    alice, bob = UserFactory(username="alice-admin"), UserFactory(username="bob-admin")
    alices = TaskFactory(owner=alice, prompt="a red fox")
    bobs = TaskFactory(owner=bob, prompt="a blue whale")
    assert changelist_ids(staff_client, q="alice-admin") == {alices.pk}
    assert changelist_ids(staff_client, q="blue whale") == {bobs.pk}


def test_filters_by_status_provider_model_and_date(staff_client, db):
    now = timezone.now()
    failed = TaskFactory(status=Task.Status.FAILED, error_code="moderation")
    pending = TaskFactory(status=Task.Status.PENDING, provider="dashscope", model="wanx-v1")
    old = TaskFactory(status=Task.Status.COMPLETED, created_at=now - timedelta(days=40))
    assert changelist_ids(staff_client, status__exact="failed") == {failed.pk}
    assert changelist_ids(staff_client, provider__exact="dashscope") == {pending.pk}
    assert changelist_ids(staff_client, model__exact="wanx-v1") == {pending.pk}
    assert changelist_ids(staff_client, error_code__exact="moderation") == {failed.pk}
    since = (now - timedelta(days=7)).isoformat()
    recent = changelist_ids(staff_client, created_at__gte=since)
    assert old.pk not in recent and {failed.pk, pending.pk} <= recent
    assert changelist_ids(
        staff_client, created_at__year=old.created_at.year, created_at__month=old.created_at.month
    ) >= {old.pk}


# --- retry ------------------------------------------------------------------------------------


def test_retry_creates_new_tasks_with_the_same_settings_and_owner(staff_client, user, other_user):
    failed = TaskFactory(
        owner=user, status=Task.Status.FAILED, prompt="a failed fox", seed=7, steps=20, guidance_scale=6.5
    )
    canceled = TaskFactory(owner=other_user, status=Task.Status.CANCELED, negative_prompt="blur", width=512, height=512)
    completed = TaskFactory(owner=user, status=Task.Status.COMPLETED)
    pending = TaskFactory(owner=user, status=Task.Status.PENDING)
    before = set(Task.objects.values_list("pk", flat=True))

    response = run_action(staff_client, "retry_tasks", [failed, canceled, completed, pending])

    new_tasks = Task.objects.exclude(pk__in=before)
    assert new_tasks.count() == 2
    for original in (failed, canceled):
        copy = new_tasks.get(owner=original.owner, prompt=original.prompt)
        assert copy.status == Task.Status.PENDING
        assert settings_of(copy) == settings_of(original)
    # The originals stay as they were, in the history.
    assert Task.objects.get(pk=failed.pk).status == Task.Status.FAILED
    assert Task.objects.get(pk=canceled.pk).status == Task.Status.CANCELED
    text = messages_of(response)
    assert "Retried 2 tasks" in text and "Skipped 2 tasks that are not failed or canceled" in text


def test_retry_respects_the_queued_task_cap(staff_client, user, settings):
    settings.MAX_QUEUED_TASKS_PER_USER = 1
    TaskFactory(owner=user, status=Task.Status.PENDING)
    failed = TaskFactory(owner=user, status=Task.Status.FAILED)
    other_failed = TaskFactory(status=Task.Status.FAILED)  # another owner, under the cap

    response = run_action(staff_client, "retry_tasks", [failed, other_failed])

    assert Task.objects.filter(owner=user).count() == 2  # refused: nothing new for the capped owner
    assert Task.objects.filter(owner=other_failed.owner).count() == 2  # retried
    text = messages_of(response)
    assert "Retried 1 task" in text and "Refused 1 task" in text and "maximum of 1 waiting task" in text


def test_retried_tasks_run_once_committed(staff_client, user, django_capture_on_commit_callbacks):
    failed = TaskFactory(owner=user, status=Task.Status.FAILED, num_images=1)
    with django_capture_on_commit_callbacks(execute=True):
        run_action(staff_client, "retry_tasks", [failed])
    copy = Task.objects.exclude(pk=failed.pk).get(owner=user)
    assert copy.status == Task.Status.COMPLETED and copy.images.count() == 1


# --- cancel -----------------------------------------------------------------------------------


def test_cancel_stops_every_unfinished_task_and_skips_finished_ones(staff_client, db):
    pending = TaskFactory(status=Task.Status.PENDING)
    retrying = TaskFactory(status=Task.Status.RETRYING)
    processing = TaskFactory(status=Task.Status.PROCESSING)  # generating: its worker keeps nothing
    completed = TaskFactory(status=Task.Status.COMPLETED)

    response = run_action(staff_client, "cancel_tasks", [pending, retrying, processing, completed])

    statuses = dict(Task.objects.values_list("pk", "status"))
    assert statuses[pending.pk] == statuses[retrying.pk] == statuses[processing.pk] == Task.Status.CANCELED
    assert statuses[completed.pk] == Task.Status.COMPLETED
    assert Task.objects.get(pk=pending.pk).finished_at is not None
    text = messages_of(response)
    assert "Canceled 3 tasks" in text
    assert "still generating" not in text
    assert "Skipped 1 task already finished" in text


def test_cancel_also_stops_a_task_whose_vendor_job_is_watched(staff_client, db, django_capture_on_commit_callbacks):
    watched = claimed(TaskFactory())
    assert watched.watch_job({"state": {"id": "job-5"}}, timezone.now() + timedelta(seconds=2))
    with django_capture_on_commit_callbacks() as callbacks:
        response = run_action(staff_client, "cancel_tasks", [watched])
    assert Task.objects.get(pk=watched.pk).status == Task.Status.CANCELED
    # The vendor job is canceled at the provider after the commit (and open pages are told).
    assert [c for c in callbacks if "cancel_provider_job" in repr(c)] and len(callbacks) == 2
    assert "Canceled 1 task." in messages_of(response)


# --- deletion with files ------------------------------------------------------------------------


def test_delete_action_asks_first_and_changes_nothing(staff_client, completed_task):
    response = run_action(staff_client, "delete_selected", [completed_task])
    assert response.status_code == 200
    assert "Are you sure" in response.content.decode()
    assert Task.objects.filter(pk=completed_task.pk).exists()
    assert all(path.is_file() for path in stored_files(completed_task))


def test_delete_action_removes_rows_and_files(staff_client, completed_task, user, django_capture_on_commit_callbacks):
    files = stored_files(completed_task)
    kept = TaskFactory(owner=user, num_images=1)
    from generator.scheduler.inline import run_task

    run_task(str(kept.pk))
    kept_files = stored_files(kept)
    assert files and all(path.is_file() for path in files + kept_files)

    with django_capture_on_commit_callbacks(execute=True):
        response = run_action(staff_client, "delete_selected", [completed_task], post="yes")

    assert not Task.objects.filter(pk=completed_task.pk).exists()
    assert not Image.objects.filter(task_id=completed_task.pk).exists()
    assert not any(path.exists() for path in files)
    assert all(path.is_file() for path in kept_files) and Task.objects.filter(pk=kept.pk).exists()
    assert "Successfully deleted 1 task" in messages_of(response)


def test_delete_action_is_labelled_with_files(staff_client, db):
    TaskFactory()  # the action menu shows only above rows
    response = staff_client.get(reverse(CHANGELIST))
    assert "Delete selected tasks with their images and files" in response.content.decode()


def test_single_task_delete_removes_files(staff_client, completed_task, django_capture_on_commit_callbacks):
    files = stored_files(completed_task)
    url = reverse("admin:generator_task_delete", args=[completed_task.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(url, {"post": "yes"})
    assert response.status_code == 302
    assert not Task.objects.filter(pk=completed_task.pk).exists()
    assert not any(path.exists() for path in files)


def test_single_image_delete_removes_its_files_only(staff_client, completed_task, django_capture_on_commit_callbacks):
    doomed, kept = completed_task.ordered_images
    doomed_files, kept_files = (
        [Path(doomed.file.path), Path(doomed.thumbnail.path)],
        [Path(kept.file.path), Path(kept.thumbnail.path)],
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(reverse("admin:generator_image_delete", args=[doomed.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert list(Image.objects.filter(task=completed_task)) == [kept]
    assert not any(path.exists() for path in doomed_files)
    assert all(path.is_file() for path in kept_files)
    assert Task.objects.filter(pk=completed_task.pk).exists()


def test_image_delete_action_removes_files(staff_client, completed_task, django_capture_on_commit_callbacks):
    images = list(completed_task.images.all())
    files = [Path(image.file.path) for image in images] + [Path(image.thumbnail.path) for image in images]
    with django_capture_on_commit_callbacks(execute=True):
        run_action(staff_client, "delete_selected", images, url_name="admin:generator_image_changelist", post="yes")
    assert not Image.objects.filter(task=completed_task).exists()
    assert not any(path.exists() for path in files)


def test_deleting_a_user_removes_their_files(staff_client, completed_task, django_capture_on_commit_callbacks):
    files = stored_files(completed_task)
    owner = completed_task.owner
    url = reverse(f"admin:{owner._meta.app_label}_{owner._meta.model_name}_delete", args=[owner.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(url, {"post": "yes"})
    assert response.status_code == 302
    assert not get_user_model().objects.filter(pk=owner.pk).exists()
    assert not Task.objects.filter(pk=completed_task.pk).exists()
    assert not any(path.exists() for path in files)


def test_bulk_user_delete_removes_their_files(staff_client, completed_task, django_capture_on_commit_callbacks):
    files = stored_files(completed_task)
    owner = completed_task.owner
    url_name = f"admin:{owner._meta.app_label}_{owner._meta.model_name}_changelist"
    with django_capture_on_commit_callbacks(execute=True):
        run_action(staff_client, "delete_selected", [owner], url_name=url_name, post="yes")
    assert not get_user_model().objects.filter(pk=owner.pk).exists()
    assert not any(path.exists() for path in files)


# --- the operations overview --------------------------------------------------------------------

OVERVIEW = "admin:generator_overview"


def test_overview_shows_counts_and_recent_failures(staff_client, db):
    now = timezone.now()
    TaskFactory.create_batch(2, status=Task.Status.PENDING)
    TaskFactory(status=Task.Status.COMPLETED)
    TaskFactory.create_batch(
        3,
        status=Task.Status.FAILED,
        error_code="moderation",
        error_message="The provider refused this prompt.",
        finished_at=now,
    )
    TaskFactory(status=Task.Status.FAILED, error_code="auth_failed", error_message=HOSTILE, finished_at=now)
    TaskFactory(
        status=Task.Status.FAILED, error_code="stale", error_message="Old.", finished_at=now - timedelta(hours=30)
    )

    response = staff_client.get(reverse(OVERVIEW))

    assert response.status_code == 200
    overview = response.context["overview"]
    counts = {row.status: row.count for row in overview.statuses}
    assert counts == {"pending": 2, "processing": 0, "retrying": 0, "completed": 1, "failed": 5, "canceled": 0}
    assert overview.total_tasks == 8
    failures = [(group.error_code, group.count) for group in overview.failures]
    assert failures == [("moderation", 3), ("auth_failed", 1)]  # "stale" is older than 24 h
    html = response.content.decode()
    assert "The provider refused this prompt." in html
    assert "<img src=x onerror" not in html and "&lt;img src=x onerror" in html
    assert 'id="status-total">8<' in html
    assert "style=" not in html.split('id="content-main"')[1]
    assert f"{reverse(CHANGELIST)}?status__exact=failed&amp;error_code__exact=moderation" in html


def test_overview_shows_queue_workers_and_sweeper(staff_client, db, monkeypatch):
    from django_q.brokers import get_broker
    from django_q.models import Schedule
    from django_q.models import Task as QTask
    from django_q.status import Stat

    schedules.install_schedules()
    started = timezone.now() - timedelta(seconds=30)
    QTask.objects.create(
        id="a" * 32,
        name="sweep",
        func=schedules.RECOVERY_SCHEDULE_FUNC,
        started=started,
        stopped=started + timedelta(seconds=1),
        success=True,
        result="Recovered 0 tasks: 0 retrying, 0 failed, 0 re-enqueued.",
    )
    Schedule.objects.filter(name=schedules.RECOVERY_SCHEDULE_NAME).update(
        task="a" * 32, next_run=timezone.now() + timedelta(seconds=30)
    )
    stat = SimpleNamespace(
        cluster_id="c0ffee",
        host="worker-1",
        status="Idle",
        workers=[101, 102],
        tob=timezone.now() - timedelta(minutes=5),
        timestamp=timezone.now(),
        reincarnations=1,
    )
    monkeypatch.setattr(Stat, "get_all", staticmethod(lambda broker=None: [stat]))
    from django.core.cache import cache

    cache.set(health.WORKER_SEEN_KEY, timezone.now().timestamp() - 4)
    try:
        response = staff_client.get(reverse(OVERVIEW))
    finally:
        cache.delete(health.WORKER_SEEN_KEY)

    overview = response.context["overview"]
    assert isinstance(overview.queue.size, int)
    assert overview.queue.broker == type(get_broker()).__name__.lower()  # orm, or redis with REDIS_URL
    assert [(c.cluster_id, c.host, c.workers, c.reincarnations) for c in overview.heartbeats.clusters] == [
        ("c0ffee", "worker-1", 2, 1)
    ]
    # Readiness runs first and sees the live cluster: the sighting is now, not 4 s ago.
    assert overview.heartbeats.remembered_seconds_ago == 0
    assert overview.sweeper.installed and not overview.sweeper.overdue
    assert overview.sweeper.last_run_success is True and overview.sweeper.last_run_started == started
    assert not overview.problems
    html = response.content.decode()
    assert "worker-1" in html and "c0ffee" in html and "Recovered 0 tasks" in html


def test_overview_counts_queued_messages(staff_client, db):
    from django_q.brokers import get_broker

    broker = get_broker()
    before = staff_client.get(reverse(OVERVIEW)).context["overview"].queue.size
    broker.enqueue("one")
    broker.enqueue("two")
    try:
        assert staff_client.get(reverse(OVERVIEW)).context["overview"].queue.size == before + 2
    finally:
        broker.purge_queue()


def test_overview_reports_trouble_instead_of_failing(staff_client, db, monkeypatch):
    from django_q.models import Schedule
    from django_q.status import Stat

    def broken(*args, **kwargs):
        raise ConnectionError("redis://secret@host down")

    monkeypatch.setattr("django_q.brokers.get_broker", broken)
    monkeypatch.setattr(Stat, "get_all", staticmethod(broken))
    Schedule.objects.filter(name=schedules.RECOVERY_SCHEDULE_NAME).delete()

    response = staff_client.get(reverse(OVERVIEW))

    assert response.status_code == 200
    overview = response.context["overview"]
    assert overview.queue.size is None and overview.heartbeats.error and not overview.sweeper.installed
    html = response.content.decode()
    assert "unavailable" in html and "not installed" in html and "secret" not in html


def test_overview_flags_an_overdue_sweeper_and_no_workers(db, monkeypatch):
    from django_q.models import Schedule
    from django_q.status import Stat

    schedules.install_schedules()
    Schedule.objects.filter(name=schedules.RECOVERY_SCHEDULE_NAME).update(
        next_run=timezone.now() - timedelta(minutes=10)
    )
    monkeypatch.setattr(Stat, "get_all", staticmethod(lambda broker=None: []))
    overview = admin_overview.build()
    assert overview.sweeper.overdue
    assert any("overdue" in problem for problem in overview.problems)
    assert any("No django-q2 cluster" in problem for problem in overview.problems)


def test_overview_shows_each_providers_limits_and_load(staff_client, db, scripted, settings):
    settings.PROVIDER_LIMITS = {
        "offline": {"CONCURRENCY": 2, "RATE": "", "FALLBACK": ""},
        "scripted": {"CONCURRENCY": 1, "RATE": "1/h", "FALLBACK": "offline:sketch-v1"},
    }
    claimed(TaskFactory())
    TaskFactory(status=Task.Status.PROCESSING)  # offline at its limit: 2 of 2 in flight
    TaskFactory.create_batch(3)
    TaskFactory(status=Task.Status.RETRYING)
    TaskFactory(provider="scripted", model="fixed")
    TaskFactory(status=Task.Status.COMPLETED)

    response = staff_client.get(reverse(OVERVIEW))

    rows = {row["name"]: row for row in response.context["overview"].providers}
    assert {name: (row["concurrency"], row["in_flight"], row["queued"]) for name, row in rows.items()} == {
        "offline": (2, 2, 4),
        "scripted": (1, 0, 1),
    }
    assert rows["scripted"]["rate"] == "1/h" and rows["scripted"]["fallback"] == "offline:sketch-v1"
    html = response.content.decode()
    table = html.split('id="overview-providers"')[1].split("</table>")[0]
    for header in ("Provider", "Concurrency limit", "Rate", "Fallback", "In flight", "Queued"):
        assert f'<th scope="col">{header}</th>' in table
    offline = table.split('id="provider-offline"')[1].split("</tr>")[0]
    assert [cell.split("</td>")[0] for cell in offline.split("<td>")[1:]] == ["2", "—", "—", "2", "4"]
    scripted_row = table.split('id="provider-scripted"')[1].split("</tr>")[0]
    assert "<code>1/h</code>" in scripted_row and "<code>offline:sketch-v1</code>" in scripted_row
    assert f"{reverse(CHANGELIST)}?provider__exact=offline" in table


def test_overview_runs_a_constant_number_of_queries(staff_client, db):
    schedules.install_schedules()
    url = reverse(OVERVIEW)
    staff_client.get(url)  # warm up: session, content types

    def queries_for(scale: int) -> int:
        """`scale` more tasks of each kind, each with its own owner and new failure codes."""
        TaskFactory.create_batch(scale, status=Task.Status.PENDING)
        FinishedTaskFactory.create_batch(scale, images=0)
        failed = Task.Status.FAILED
        FinishedTaskFactory.create_batch(
            scale, status=failed, error_code="rate_limited", error_message="Too many requests."
        )
        new_code = factory.Sequence(lambda n: f"code_{n}")
        FinishedTaskFactory.create_batch(scale, status=failed, error_code=new_code, error_message="Other.")
        with CaptureQueriesContext(connection) as captured:
            assert staff_client.get(url).status_code == 200
        return len(captured)

    small, large = queries_for(1), queries_for(6)
    assert small == large
    assert large <= 11, large  # 11: the sign-ups waiting for approval


def test_overview_is_linked_from_the_admin_index_and_task_list(staff_client, db):
    url = reverse(OVERVIEW)
    assert url in staff_client.get(reverse("admin:index")).content.decode()
    assert url in staff_client.get(reverse(CHANGELIST)).content.decode()


def test_overview_sends_non_staff_to_the_admin_login(client, user):
    client.force_login(user)
    response = client.get(reverse(OVERVIEW))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert "overview" not in response.content.decode()


def test_overview_needs_a_signed_in_visitor(client, db):
    response = client.get(reverse(OVERVIEW))
    assert response.status_code == 302 and "overview" not in response.content.decode()


def test_overview_forbids_staff_without_task_permission(client, db):
    client.force_login(UserFactory(is_staff=True))
    assert client.get(reverse(OVERVIEW)).status_code == 403
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_task", content_type__app_label="generator"))
    client.force_login(viewer)
    assert client.get(reverse(OVERVIEW)).status_code == 200


def test_overview_is_read_only(staff_client, db):
    TaskFactory(status=Task.Status.PENDING)
    before = list(Task.objects.values_list("pk", "status"))
    assert staff_client.post(reverse(OVERVIEW)).status_code == 405
    assert list(Task.objects.values_list("pk", "status")) == before


def test_task_settings_fields_all_survive_a_retry():
    # The retry test compares settings_of(): it must cover every generation setting.
    assert set(TaskSettings.__dataclass_fields__) >= {
        "prompt",
        "negative_prompt",
        "provider",
        "model",
        "width",
        "height",
        "num_images",
        "steps",
        "guidance_scale",
        "seed",
    }
