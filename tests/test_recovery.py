"""Recovery of tasks whose worker or queue message was lost (generator.recovery), in process.

Re-enqueued tasks run inline here (Q_CLUSTER sync): they run when the recovery's on_commit
callbacks are executed, so each test can look at the row before and after.
"""

from __future__ import annotations

import io
import logging
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone
from django.utils.module_loading import import_string
from django_q.models import Schedule

from generator import jobs
from generator.models import Image, Task
from generator.ops import recovery, schedules
from generator.ops.recovery import recover_tasks

from .factories import TaskFactory

TIMEOUT, GRACE, REQUEUE_AFTER = 100, 10, 300
CLAIM_LIMIT = timedelta(seconds=TIMEOUT + GRACE)
QUEUE_LIMIT = timedelta(seconds=REQUEUE_AFTER)
SECOND = timedelta(seconds=1)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def limits(settings):
    settings.TASK_TIMEOUT = TIMEOUT
    settings.RECOVERY_GRACE_SECONDS = GRACE
    settings.REQUEUE_PENDING_AFTER_SECONDS = REQUEUE_AFTER
    settings.PROVIDER_MAX_ATTEMPTS = 3


@pytest.fixture
def now() -> datetime:
    return timezone.now()


def make_task(
    *,
    status: str,
    attempts: int = 0,
    claimed: datetime | None = None,
    enqueued: datetime | None = None,
    created: datetime | None = None,
    **fields: object,
) -> Task:
    """A task left in a state as a worker (or a lost one) would have left it."""
    task = TaskFactory(**fields)
    Task.objects.filter(pk=task.pk).update(
        status=status,
        attempts=attempts,
        claimed_at=claimed,
        started_at=claimed,
        enqueued_at=enqueued,
        created_at=created or min(t for t in (claimed, enqueued, timezone.now()) if t is not None) - SECOND,
    )
    task.refresh_from_db()
    return task


def row(task: Task) -> dict:
    return Task.objects.filter(pk=task.pk).values().get()


def files_under(root: Path) -> list[Path]:
    return sorted(path for path in Path(root).rglob("*") if path.is_file())


# --- processing: the worker died -------------------------------------------------------------


def test_a_processing_task_whose_worker_died_goes_back_to_retrying_and_runs_again(
    now, media_root, django_capture_on_commit_callbacks
):
    task = make_task(status="processing", attempts=1, claimed=now - CLAIM_LIMIT - SECOND, enqueued=now - 200 * SECOND)

    with django_capture_on_commit_callbacks() as callbacks:
        report = recover_tasks(now)

    assert report.retrying == [task.pk] and report.failed == [] and report.requeued == []
    task.refresh_from_db()
    assert task.status == Task.Status.RETRYING
    assert task.error_code == "worker_lost"
    assert task.error_message == "The worker stopped while generating; trying again."
    assert task.enqueued_at > now  # marked as back on the queue
    assert len(callbacks) == 1  # the re-enqueue waits for the commit

    callbacks[0]()  # the queue delivers it (inline in tests)

    task.refresh_from_db()
    assert task.status == Task.Status.COMPLETED, task.error_message
    assert task.attempts == 2 and task.error_code == ""
    assert Image.objects.filter(task=task).count() == 1
    assert len(files_under(media_root)) == 2


def test_a_processing_task_whose_worker_died_on_its_last_attempt_fails(now, django_capture_on_commit_callbacks):
    task = make_task(status="processing", attempts=3, claimed=now - CLAIM_LIMIT - SECOND)

    with django_capture_on_commit_callbacks() as callbacks:
        report = recover_tasks(now)

    assert report.failed == [task.pk] and report.retrying == [] and report.requeued == []
    assert callbacks == []
    task.refresh_from_db()
    assert task.status == Task.Status.FAILED
    assert task.error_code == "worker_lost"
    assert task.error_message == "The worker stopped while generating; please retry."
    assert task.finished_at is not None and task.attempts == 3


@pytest.mark.parametrize("over, recovered", [(timedelta(0), False), (timedelta(microseconds=1), True)])
def test_a_processing_task_is_recovered_only_once_its_claim_is_older_than_timeout_plus_grace(
    now, over, recovered, django_capture_on_commit_callbacks
):
    task = make_task(status="processing", attempts=1, claimed=now - CLAIM_LIMIT - over)
    before = row(task)

    with django_capture_on_commit_callbacks():
        report = recover_tasks(now)

    assert report.retrying == ([task.pk] if recovered else [])
    assert (row(task) == before) is not recovered


def test_a_processing_task_with_a_fresh_claim_is_left_alone_however_old_it_is(now, django_capture_on_commit_callbacks):
    # Created long ago, retried by recovery long ago, claimed again a moment ago: a live worker.
    task = make_task(
        status="processing",
        attempts=2,
        claimed=now - 5 * SECOND,
        enqueued=now - 1000 * SECOND,
        created=now - 3600 * SECOND,
    )
    before = row(task)

    with django_capture_on_commit_callbacks() as callbacks:
        report = recover_tasks(now)

    assert report.total == 0 and callbacks == [] and row(task) == before


# --- retrying: the worker died during its backoff -------------------------------------------


def test_a_retrying_task_whose_worker_died_during_backoff_is_re_enqueued(
    now, media_root, django_capture_on_commit_callbacks
):
    task = make_task(
        status="retrying",
        attempts=1,
        claimed=now - CLAIM_LIMIT - SECOND,
        enqueued=now - CLAIM_LIMIT - 2 * SECOND,  # before the claim: nothing on the queue
        error_code="rate_limited",
        error_message="The provider is busy. Trying again in 2 s (attempt 2 of 3).",
    )

    with django_capture_on_commit_callbacks() as callbacks:
        report = recover_tasks(now)

    assert report.requeued == [task.pk] and report.retrying == [] and report.failed == []
    task.refresh_from_db()
    assert task.status == Task.Status.RETRYING  # stays retrying until a worker claims it
    assert task.error_code == "worker_lost"
    assert len(callbacks) == 1

    callbacks[0]()

    task.refresh_from_db()
    assert task.status == Task.Status.COMPLETED and task.attempts == 2
    assert len(files_under(media_root)) == 2


def test_a_retrying_task_out_of_attempts_fails_instead_of_running_once_more(now, django_capture_on_commit_callbacks):
    task = make_task(status="retrying", attempts=3, claimed=now - CLAIM_LIMIT - SECOND)

    with django_capture_on_commit_callbacks() as callbacks:
        report = recover_tasks(now)

    assert report.failed == [task.pk] and callbacks == []
    task.refresh_from_db()
    assert (task.status, task.error_code) == (Task.Status.FAILED, "worker_lost")


def test_a_retrying_task_within_its_backoff_window_is_left_alone(now, django_capture_on_commit_callbacks):
    task = make_task(status="retrying", attempts=1, claimed=now - CLAIM_LIMIT, enqueued=now - 1000 * SECOND)
    before = row(task)

    with django_capture_on_commit_callbacks() as callbacks:
        report = recover_tasks(now)

    assert report.total == 0 and callbacks == [] and row(task) == before


def test_a_recovered_task_waiting_on_the_queue_is_not_re_sent_every_minute(now, django_capture_on_commit_callbacks):
    task = make_task(status="processing", attempts=1, claimed=now - CLAIM_LIMIT - SECOND)
    with django_capture_on_commit_callbacks():  # re-enqueued, but the message never arrives
        assert recover_tasks(now).retrying == [task.pk]
    requeued_at = Task.objects.get(pk=task.pk).enqueued_at

    for minutes in (1, 2, 4):
        with django_capture_on_commit_callbacks() as callbacks:
            assert recover_tasks(now + timedelta(minutes=minutes)).total == 0
        assert callbacks == []

    # Once it has waited REQUEUE_PENDING_AFTER_SECONDS, the message counts as lost: sent again.
    with django_capture_on_commit_callbacks() as callbacks:
        report = recover_tasks(requeued_at + QUEUE_LIMIT + SECOND)
    assert report.requeued == [task.pk] and len(callbacks) == 1
    assert Task.objects.get(pk=task.pk).status == Task.Status.RETRYING


# --- pending: the queue message was lost -----------------------------------------------------


def test_a_pending_task_whose_queue_message_was_lost_is_re_enqueued_once(
    now, media_root, django_capture_on_commit_callbacks
):
    task = make_task(status="pending", enqueued=now - QUEUE_LIMIT - SECOND)

    with django_capture_on_commit_callbacks() as callbacks:
        report = recover_tasks(now)

    assert report.requeued == [task.pk] and report.retrying == [] and report.failed == []
    task.refresh_from_db()
    assert task.status == Task.Status.PENDING and task.enqueued_at > now
    # The next sweep, a minute later, does not send it again.
    with django_capture_on_commit_callbacks() as second:
        assert recover_tasks(now + timedelta(minutes=1)).total == 0
    assert second == []

    callbacks[0]()

    task.refresh_from_db()
    assert task.status == Task.Status.COMPLETED and task.attempts == 1
    assert len(files_under(media_root)) == 2


def test_a_pending_task_never_enqueued_counts_from_its_creation(now, django_capture_on_commit_callbacks):
    lost = make_task(status="pending", created=now - QUEUE_LIMIT - SECOND)
    fresh = make_task(status="pending", created=now - QUEUE_LIMIT)

    with django_capture_on_commit_callbacks() as callbacks:
        report = recover_tasks(now)

    assert report.requeued == [lost.pk] and len(callbacks) == 1
    assert Task.objects.get(pk=fresh.pk).enqueued_at is None


def test_a_pending_task_just_under_the_threshold_is_left_alone(now, django_capture_on_commit_callbacks):
    task = make_task(status="pending", enqueued=now - QUEUE_LIMIT, created=now - 3600 * SECOND)
    before = row(task)

    with django_capture_on_commit_callbacks() as callbacks:
        assert recover_tasks(now).total == 0

    assert callbacks == [] and row(task) == before


@pytest.mark.parametrize("status", ["completed", "failed", "canceled"])
def test_finished_tasks_are_never_touched(now, status, django_capture_on_commit_callbacks):
    long_ago = now - 10 * CLAIM_LIMIT
    task = make_task(status=status, attempts=1, claimed=long_ago, enqueued=long_ago - SECOND)
    before = row(task)

    with django_capture_on_commit_callbacks() as callbacks:
        assert recover_tasks(now).total == 0

    assert callbacks == [] and row(task) == before


# --- races -----------------------------------------------------------------------------------


def _finishes(task: Task) -> None:
    Task.objects.filter(pk=task.pk).update(status="completed", progress=100, finished_at=timezone.now())


def _claimed_again(task: Task) -> None:
    # Another delivery took it: the row is processing again, with a new claim.
    Task.objects.filter(pk=task.pk).update(claimed_at=timezone.now(), attempts=task.attempts + 1)


def _canceled(task: Task) -> None:
    Task.objects.filter(pk=task.pk).update(status="canceled", finished_at=timezone.now())


@pytest.mark.parametrize(
    "status, attempts, meanwhile",
    [
        ("processing", 1, _finishes),  # a slow worker that was alive after all
        ("processing", 3, _finishes),  # ...also when recovery would have failed it
        ("processing", 1, _claimed_again),
        ("retrying", 1, _canceled),
    ],
)
def test_a_task_that_changes_while_recovery_runs_is_not_disturbed(
    now, monkeypatch, caplog, status, attempts, meanwhile, django_capture_on_commit_callbacks
):
    task = make_task(status=status, attempts=attempts, claimed=now - CLAIM_LIMIT - SECOND)
    read_candidates = recovery._candidates

    def then_the_row_changes(limits):
        candidates = read_candidates(limits)
        assert [candidate.pk for candidate in candidates] == [task.pk]
        meanwhile(task)
        return candidates

    monkeypatch.setattr(recovery, "_candidates", then_the_row_changes)
    with caplog.at_level(logging.INFO, logger="generator"), django_capture_on_commit_callbacks() as callbacks:
        report = recover_tasks(now)

    assert report.total == 0 and callbacks == []
    current = Task.objects.get(pk=task.pk)
    assert current.error_code == ""
    assert (
        current.status
        == {"_finishes": "completed", "_claimed_again": "processing", "_canceled": "canceled"}[meanwhile.__name__]
    )
    assert f"task {task.pk} changed during recovery; left alone" in caplog.text


# --- dry run, logging, command ------------------------------------------------------------------


@pytest.fixture
def lost_tasks(now) -> dict[str, Task]:
    return {
        "retry": make_task(status="processing", attempts=1, claimed=now - CLAIM_LIMIT - SECOND),
        "fail": make_task(status="processing", attempts=3, claimed=now - CLAIM_LIMIT - SECOND),
        "resume": make_task(status="retrying", attempts=1, claimed=now - CLAIM_LIMIT - SECOND),
        "requeue": make_task(status="pending", enqueued=now - QUEUE_LIMIT - SECOND),
        "fine": make_task(status="processing", attempts=1, claimed=now - SECOND),
    }


def test_a_dry_run_reports_the_same_tasks_and_changes_nothing(now, lost_tasks, django_capture_on_commit_callbacks):
    before = {name: row(task) for name, task in lost_tasks.items()}

    with django_capture_on_commit_callbacks() as callbacks:
        dry = recover_tasks(now, dry_run=True)

    assert callbacks == []
    assert {name: row(task) for name, task in lost_tasks.items()} == before
    assert dry.dry_run
    assert dry.summary() == "Dry run: would recover 4 tasks: 1 retrying, 1 failed, 2 re-enqueued. Nothing was changed."

    with django_capture_on_commit_callbacks():
        real = recover_tasks(now)
    assert (real.retrying, real.failed, sorted(real.requeued)) == (dry.retrying, dry.failed, sorted(dry.requeued))
    assert real.retrying == [lost_tasks["retry"].pk] and real.failed == [lost_tasks["fail"].pk]
    assert sorted(real.requeued) == sorted([lost_tasks["resume"].pk, lost_tasks["requeue"].pk])
    assert real.summary() == "Recovered 4 tasks: 1 retrying, 1 failed, 2 re-enqueued."


def test_each_transition_logs_one_info_line_with_the_task_id_and_never_the_prompt(
    now, lost_tasks, caplog, django_capture_on_commit_callbacks
):
    with caplog.at_level(logging.INFO, logger="generator.ops.recovery"), django_capture_on_commit_callbacks():
        recover_tasks(now)

    lines = [record.getMessage() for record in caplog.records if record.name == "generator.ops.recovery"]
    for name in ("retry", "fail", "resume", "requeue"):
        assert len([line for line in lines if str(lost_tasks[name].pk) in line]) == 1, (name, lines)
    assert not any(str(lost_tasks["fine"].pk) in line for line in lines)
    assert all(record.levelno == logging.INFO for record in caplog.records if record.name == "generator.ops.recovery")
    prompts = [task.prompt for task in lost_tasks.values()]
    assert not any(prompt in caplog.text for prompt in prompts)


def test_the_command_recovers_and_prints_one_summary_line(lost_tasks, django_capture_on_commit_callbacks):
    out = io.StringIO()
    with django_capture_on_commit_callbacks():
        call_command("recover_tasks", stdout=out)

    assert out.getvalue() == "Recovered 4 tasks: 1 retrying, 1 failed, 2 re-enqueued.\n"
    assert Task.objects.get(pk=lost_tasks["fail"].pk).status == Task.Status.FAILED


def test_the_command_dry_run_lists_tasks_when_verbose_and_changes_nothing(
    lost_tasks, django_capture_on_commit_callbacks
):
    before = {name: row(task) for name, task in lost_tasks.items()}
    out = io.StringIO()

    with django_capture_on_commit_callbacks() as callbacks:
        call_command("recover_tasks", "--dry-run", verbosity=2, stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[-1] == "Dry run: would recover 4 tasks: 1 retrying, 1 failed, 2 re-enqueued. Nothing was changed."
    assert f"{lost_tasks['retry'].pk} retrying" in lines
    assert f"{lost_tasks['fail'].pk} failed" in lines
    assert f"{lost_tasks['requeue'].pk} re-enqueued" in lines
    assert len(lines) == 5
    assert callbacks == [] and {name: row(task) for name, task in lost_tasks.items()} == before


def test_the_command_with_nothing_to_do(db):
    out = io.StringIO()
    call_command("recover_tasks", stdout=out)
    assert out.getvalue() == "Recovered 0 tasks: 0 retrying, 0 failed, 0 re-enqueued.\n"


# --- schedules ---------------------------------------------------------------------------------


def test_setup_schedules_installs_the_sweeper_once_however_often_it_runs(db):
    Schedule.objects.filter(name=schedules.RECOVERY_SCHEDULE_NAME).delete()  # whatever migrate installed
    out = io.StringIO()

    call_command("setup_schedules", stdout=out)
    call_command("setup_schedules", stdout=out)

    assert out.getvalue().splitlines() == [
        "Schedules: 1 created, 0 updated (atelier-recover-tasks).",
        "Schedules: 0 created, 1 updated (atelier-recover-tasks).",
    ]
    schedule = Schedule.objects.get(name="atelier-recover-tasks")
    assert schedule.func == "generator.jobs.recover_tasks"
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == (Schedule.MINUTES, 1, -1)
    assert schedule.cluster is None
    assert import_string(schedule.func) is jobs.recover_tasks


def test_setup_schedules_repairs_an_edited_or_duplicated_schedule_and_leaves_others_alone(db):
    Schedule.objects.filter(name=schedules.RECOVERY_SCHEDULE_NAME).delete()
    Schedule.objects.create(
        name=schedules.RECOVERY_SCHEDULE_NAME, func="math.floor", args="1", schedule_type=Schedule.DAILY
    )
    Schedule.objects.create(name=schedules.RECOVERY_SCHEDULE_NAME, func="math.floor", schedule_type=Schedule.HOURLY)
    other = Schedule.objects.create(name="someone-elses", func="math.floor", schedule_type=Schedule.DAILY)

    assert schedules.install_schedules() == {schedules.RECOVERY_SCHEDULE_NAME: False}

    schedule = Schedule.objects.get(name=schedules.RECOVERY_SCHEDULE_NAME)
    assert (schedule.func, schedule.args, schedule.schedule_type, schedule.minutes) == (
        schedules.RECOVERY_SCHEDULE_FUNC,
        None,
        Schedule.MINUTES,
        1,
    )
    assert Schedule.objects.get(pk=other.pk).func == "math.floor"


def test_the_post_migrate_receiver_installs_the_schedule(db):
    Schedule.objects.filter(name=schedules.RECOVERY_SCHEDULE_NAME).delete()
    out = io.StringIO()

    schedules.install_schedules_after_migrate(using="default", verbosity=2, stdout=out)
    schedules.install_schedules_after_migrate(using="default", verbosity=1)

    assert Schedule.objects.filter(name=schedules.RECOVERY_SCHEDULE_NAME).count() == 1
    assert "Created django-q2 schedule atelier-recover-tasks" in out.getvalue()


def test_the_schedule_runs_the_sweeper_through_django_q(now, django_capture_on_commit_callbacks):
    # django-q2's own scheduler (as the cluster calls it) with tasks inline in tests.
    from django_q.scheduler import scheduler

    task = make_task(status="processing", attempts=3, claimed=timezone.now() - CLAIM_LIMIT - SECOND)
    schedules.install_schedules()
    Schedule.objects.filter(name=schedules.RECOVERY_SCHEDULE_NAME).update(next_run=timezone.now() - SECOND)

    with django_capture_on_commit_callbacks(execute=True):
        scheduler()

    task.refresh_from_db()
    assert (task.status, task.error_code) == (Task.Status.FAILED, "worker_lost")
    assert Schedule.objects.get(name=schedules.RECOVERY_SCHEDULE_NAME).next_run > timezone.now()
    assert jobs.recover_tasks() == "Recovered 0 tasks: 0 retrying, 0 failed, 0 re-enqueued."
