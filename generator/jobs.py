"""Every django-q2 entry point: take ids, call services, nothing else.

These dotted paths are stored in queued messages and in schedules: rename one only with a
data migration (see migrations/0004_schedules_run_jobs.py).
"""

from __future__ import annotations

from django_q.exceptions import TimeoutException

from . import catalogue, services
from .ops import backups, maintenance
from .reasons import Reason
from .scheduler import recovery, steps


def dispatch() -> str:
    """A permission to run: claim the next runnable task fairly and run its step (and more
    while time allows). The message names no task: the database decides."""
    try:
        return f"{steps.work()} steps"
    except TimeoutException:
        if steps.current is not None:
            steps.current.mark_failed("timeout", Reason(services.MESSAGES["timeout"]))
        raise


def run_task(task_id: str) -> str | None:
    """Messages queued before the scheduler named a task; they are permissions like dispatch."""
    return dispatch()


def cancel_provider_job(task_id: str) -> None:
    """A canceled task's vendor job: cancel it at the vendor where the API allows."""
    services.cancel_provider_job(task_id)


def recover_tasks() -> str:
    """The sweeper's schedule (every minute); its result is the summary line."""
    return recovery.recover_tasks().summary()


def retention_cleanup() -> str:
    """The nightly retention schedule (when RETENTION_DAYS is set)."""
    return maintenance.retention_cleanup()


def check_providers() -> str:
    """The hourly catalogue schedule, and the worker's check at start-up."""
    return "; ".join(result.summary() for result in catalogue.refresh()) or "no providers"


def make_backup() -> str:
    """The backup schedule (when BACKUP_SCHEDULE is set): an archive in BACKUP_DIR, BACKUP_KEEP kept."""
    return backups.scheduled_backup()
