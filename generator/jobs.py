"""django-q2 entry points: take ids, call services, nothing else."""

from __future__ import annotations

from django_q.exceptions import TimeoutException

from . import services


def run_task(task_id: str) -> str | None:
    try:
        task = services.run_task(task_id)
    except TimeoutException:
        services.fail_timed_out(task_id)
        raise
    return task.status if task else None
