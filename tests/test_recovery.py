"""Taking back tasks whose worker died (generator.scheduler.recovery), in process.

A worker holding a task beats every HEARTBEAT_SECONDS; a hold whose beat is older than
HEARTBEAT_TIMEOUT_SECONDS is taken back. Woken workers run inline here (Q_CLUSTER sync), so a
task put back by recovery runs at once; each test looks at the row the way a person would.
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
from generator.models import Task
from generator.ops import schedules
from generator.scheduler import recovery
from generator.scheduler.recovery import recover_tasks, take_back_stale

from .factories import TaskFactory

HEARTBEAT_TIMEOUT, TIMEOUT, GRACE = 30, 100, 10
STALE = timedelta(seconds=HEARTBEAT_TIMEOUT)
SECOND = timedelta(seconds=1)
JOB = {"state": {"task_id": "vendor-1"}, "deadline": "2999-01-01T00:00:00+00:00", "interval": 1.0, "check_errors": 0}

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def limits(settings):
    settings.HEARTBEAT_TIMEOUT_SECONDS = HEARTBEAT_TIMEOUT
    settings.TASK_TIMEOUT = TIMEOUT
    settings.RECOVERY_GRACE_SECONDS = GRACE
    settings.PROVIDER_MAX_ATTEMPTS = 3


def held_task(*, attempts: int = 1, beat: datetime | None, worker: str = "host:123", **fields: object) -> Task:
    """A task as a worker holds it, its last heartbeat at `beat`."""
    task = TaskFactory(**fields)
    Task.objects.filter(pk=task.pk).update(
        status="processing", attempts=attempts, held_by=worker, heartbeat_at=beat, claimed_at=beat, started_at=beat
    )
    task.refresh_from_db()
    return task


def row(task: Task) -> dict:
    return Task.objects.filter(pk=task.pk).values().get()


def files_under(root: Path) -> list[Path]:
    return sorted(path for path in Path(root).rglob("*") if path.is_file())


# --- a worker that stopped beating ---------------------------------------------------------


def test_a_task_whose_worker_stopped_beating_is_taken_back_and_runs_again(media_root):
    task = held_task(attempts=1, beat=timezone.now() - STALE - SECOND)

    report = recover_tasks()

    assert report.retrying == [task.pk] and report.failed == [] and report.resumed == []
    task.refresh_from_db()  # woken at once: the next worker ran it (inline here)
    assert (task.status, task.attempts, task.held_by) == (Task.Status.COMPLETED, 2, "")
    assert len(files_under(media_root)) == 2


def test_taken_back_on_its_last_attempt_it_fails_as_worker_lost(media_root):
    task = held_task(attempts=3, beat=timezone.now() - STALE - SECOND)

    report = take_back_stale()

    assert report.failed == [task.pk] and report.retrying == []
    task.refresh_from_db()
    assert (task.status, task.error_code, task.held_by) == (Task.Status.FAILED, "worker_lost", "")
    assert task.error_text == "The worker stopped while generating; please retry."
    assert task.finished_at is not None
    assert files_under(media_root) == []


def test_a_task_whose_worker_still_beats_is_left_alone_however_long_it_runs():
    now = timezone.now()
    task = held_task(beat=now - STALE + SECOND)
    Task.objects.filter(pk=task.pk).update(claimed_at=now - timedelta(hours=3), started_at=now - timedelta(hours=3))
    before = row(task)

    assert take_back_stale(now).total == 0
    assert row(task) == before


def test_the_heartbeat_timeout_is_the_edge():
    now = timezone.now()
    task = held_task(beat=now - STALE)
    assert take_back_stale(now).total == 0  # exactly at the timeout: still alive
    assert take_back_stale(now + SECOND).retrying == [task.pk]


def test_a_vendor_job_whose_watcher_died_is_watched_again_and_never_resubmitted():
    now = timezone.now()
    task = held_task(attempts=1, beat=now - STALE - SECOND, provider_job=JOB)

    report = take_back_stale(now)

    assert report.resumed == [task.pk]
    task.refresh_from_db()
    # Still generating at the vendor: nobody holds it, its next look is due now, no attempt spent.
    assert (task.status, task.held_by, task.attempts, task.provider_job) == ("processing", "", 1, JOB)
    assert task.next_attempt_at == now
    assert task.error_code == ""


def test_a_task_that_changes_while_recovery_runs_is_not_disturbed(monkeypatch):
    now = timezone.now()
    task = held_task(beat=now - STALE - SECOND)
    candidates = recovery._stale(now)

    # The worker beats between the sweeper's read and its update.
    Task.objects.filter(pk=task.pk).update(heartbeat_at=now)
    monkeypatch.setattr(recovery, "_stale", lambda moment: candidates)

    assert take_back_stale(now).total == 0
    task.refresh_from_db()
    assert (task.status, task.held_by, task.attempts) == ("processing", "host:123", 1)


@pytest.mark.parametrize("status", ["completed", "failed", "canceled", "pending", "retrying"])
def test_tasks_nobody_holds_are_never_touched(status):
    task = TaskFactory(status=status)
    Task.objects.filter(pk=task.pk).update(claimed_at=timezone.now() - timedelta(days=2))
    before = row(task)
    assert take_back_stale().total == 0
    assert row(task) == before


def test_a_task_left_processing_from_before_the_scheduler_is_taken_back_after_timeout_plus_grace():
    # Older workers held tasks without a heartbeat; their rows have no holder.
    now = timezone.now()
    task = TaskFactory()
    claimed_at = now - timedelta(seconds=TIMEOUT + GRACE)
    Task.objects.filter(pk=task.pk).update(status="processing", attempts=1, claimed_at=claimed_at)

    assert take_back_stale(now).total == 0
    assert take_back_stale(now + SECOND).retrying == [task.pk]


# --- reports, logs and the command ------------------------------------------------------------


@pytest.fixture
def lost_tasks() -> dict[str, Task]:
    stale = timezone.now() - STALE - SECOND
    return {
        "retry": held_task(attempts=1, beat=stale, prompt="secret prompt one"),
        "fail": held_task(attempts=3, beat=stale, prompt="secret prompt two"),
        "resume": held_task(attempts=1, beat=stale, provider_job=JOB, prompt="secret prompt three"),
    }


def test_a_dry_run_reports_the_same_tasks_and_changes_nothing(lost_tasks):
    before = {name: row(task) for name, task in lost_tasks.items()}

    dry = recover_tasks(dry_run=True)

    assert dry.summary() == "Dry run: would recover 3 tasks: 1 retrying, 1 failed, 1 resumed. Nothing was changed."
    assert {name: row(task) for name, task in lost_tasks.items()} == before
    report = take_back_stale()
    assert (report.retrying, report.failed, report.resumed) == (dry.retrying, dry.failed, dry.resumed)


def test_each_transition_logs_one_info_line_with_the_task_id_and_never_the_prompt(lost_tasks, caplog):
    with caplog.at_level(logging.INFO, logger="generator.scheduler.recovery"):
        take_back_stale()
    lines = [record.getMessage() for record in caplog.records if record.name == "generator.scheduler.recovery"]
    for name, task in lost_tasks.items():
        assert len([line for line in lines if str(task.pk) in line]) == 1, (name, lines)
    assert lines[-1] == "recovery: Recovered 3 tasks: 1 retrying, 1 failed, 1 resumed."
    assert not any("secret" in line for line in lines)


def test_the_command_recovers_and_prints_one_summary_line(lost_tasks):
    out = io.StringIO()
    call_command("recover_tasks", stdout=out)
    assert out.getvalue() == "Recovered 3 tasks: 1 retrying, 1 failed, 1 resumed.\n"


def test_the_command_dry_run_lists_tasks_when_verbose_and_changes_nothing(lost_tasks):
    before = {name: row(task) for name, task in lost_tasks.items()}
    out = io.StringIO()

    call_command("recover_tasks", "--dry-run", verbosity=2, stdout=out)

    lines = out.getvalue().splitlines()
    assert sorted(lines[:-1]) == sorted(
        [
            f"{lost_tasks['retry'].pk} retrying",
            f"{lost_tasks['fail'].pk} failed",
            f"{lost_tasks['resume'].pk} resumed",
        ]
    )
    assert lines[-1] == "Dry run: would recover 3 tasks: 1 retrying, 1 failed, 1 resumed. Nothing was changed."
    assert {name: row(task) for name, task in lost_tasks.items()} == before


def test_the_command_with_nothing_to_do(db):
    out = io.StringIO()
    call_command("recover_tasks", stdout=out)
    assert out.getvalue() == "Recovered 0 tasks: 0 retrying, 0 failed, 0 resumed.\n"


# --- schedules ---------------------------------------------------------------------------------


def test_setup_schedules_installs_the_sweeper_once_however_often_it_runs(db):
    Schedule.objects.filter(name=schedules.RECOVERY_SCHEDULE_NAME).delete()  # whatever migrate installed
    out = io.StringIO()

    call_command("setup_schedules", stdout=out)
    call_command("setup_schedules", stdout=out)

    # The hourly provider check (tests/test_catalogue.py) is installed alongside.
    assert out.getvalue().splitlines() == [
        "Schedules: 1 created, 2 updated (atelier-check-providers, atelier-recover-tasks, atelier-refresh-popular).",
        "Schedules: 0 created, 3 updated (atelier-check-providers, atelier-recover-tasks, atelier-refresh-popular).",
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

    assert schedules.install_schedules() == {
        schedules.RECOVERY_SCHEDULE_NAME: False,
        schedules.CATALOGUE_SCHEDULE_NAME: False,
        schedules.POPULAR_SCHEDULE_NAME: False,
    }

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


def test_the_schedule_runs_the_sweeper_through_django_q(django_capture_on_commit_callbacks):
    # django-q2's own scheduler (as the cluster calls it) with tasks inline in tests.
    from django_q.scheduler import scheduler

    task = held_task(attempts=3, beat=timezone.now() - STALE - SECOND)
    schedules.install_schedules()
    Schedule.objects.filter(name=schedules.RECOVERY_SCHEDULE_NAME).update(next_run=timezone.now() - SECOND)

    with django_capture_on_commit_callbacks(execute=True):
        scheduler()

    task.refresh_from_db()
    assert (task.status, task.error_code) == (Task.Status.FAILED, "worker_lost")
    assert Schedule.objects.get(name=schedules.RECOVERY_SCHEDULE_NAME).next_run > timezone.now()
    assert jobs.recover_tasks() == "Recovered 0 tasks: 0 retrying, 0 failed, 0 resumed."
