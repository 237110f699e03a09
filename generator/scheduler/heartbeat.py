"""A worker's sign of life while it holds a task, so a dead worker's task is taken back in
seconds (generator.scheduler.recovery.take_back_stale) instead of after TASK_TIMEOUT."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection

from ..models import Task

logger = logging.getLogger(__name__)


@contextmanager
def beating(task: Task, *, enabled: bool = True) -> Iterator[None]:
    """Record task.heartbeat_at every HEARTBEAT_SECONDS from a thread while the block runs.

    The claim wrote the first beat. Off where no other process could take the task back
    (django-q2's sync mode runs the step inside the request).
    """
    if not enabled:
        yield
        return
    stop = threading.Event()
    thread = threading.Thread(target=_beat_until, args=(task, stop), name=f"heartbeat-{task.pk}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=settings.HEARTBEAT_SECONDS + 5)


def _beat_until(task: Task, stop: threading.Event) -> None:
    try:
        while not stop.wait(settings.HEARTBEAT_SECONDS):
            try:
                if not task.beat():
                    return  # no longer ours: finished, canceled or taken back
            except DatabaseError:
                logger.warning("task %s heartbeat not recorded", task.pk, exc_info=True)
                close_old_connections()
    finally:
        connection.close()  # this thread's own connection
