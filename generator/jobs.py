"""Every django-q2 entry point: take ids, call services, nothing else.

These dotted paths are stored in queued messages and in schedules: rename one only with a
data migration (see migrations/0004_schedules_run_jobs.py).
"""

from __future__ import annotations

from django_q.exceptions import TimeoutException

from . import services
from .ops import maintenance, recovery


def run_task(task_id: str) -> str | None:
    try:
        task = services.run_task(task_id)
    except TimeoutException:
        services.fail_timed_out(task_id)
        raise
    return task.status if task else None


def recover_tasks() -> str:
    """The sweeper's schedule (every minute); its result is the summary line."""
    return recovery.recover_tasks().summary()


def retention_cleanup() -> str:
    """The nightly retention schedule (when RETENTION_DAYS is set)."""
    return maintenance.retention_cleanup()
