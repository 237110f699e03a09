"""Run one task to its end in this process: for tests and `manage.py generate`, not workers.

Workers never wait (generator.scheduler.steps); here waiting for a retry or a vendor job's
next look is the point, so this sleeps until the task's next step is due.
"""

from __future__ import annotations

import time

from django.utils import timezone

from ..models import Task
from . import claim, steps


def run_task(task_id: str, *, max_wait: float = 600.0) -> Task | None:
    """Run the task's steps as they fall due until it is final (or would wait past max_wait)."""
    worker = f"inline:{steps.worker_name()}"
    deadline = time.monotonic() + max_wait
    while True:
        task = Task.objects.filter(pk=task_id).first()
        if task is None or task.is_finished:
            return task
        claimed = claim.claim(task, worker)
        if claimed is not None:
            steps.run_step(claimed)
            continue
        due = task.next_attempt_at
        wait = (due - timezone.now()).total_seconds() if due else 0.0
        if task.held_by or time.monotonic() + max(wait, 0) > deadline:
            return task  # another worker holds it, or it waits longer than we may
        time.sleep(min(max(wait, 0.001), 1.0))
