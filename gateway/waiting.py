"""Waiting for a task to finish without holding a thread.

Served over ASGI the wait is an asyncio wait on the per-process Hub (generator.live): it wakes
when any task of the owner changes, reads the task once, and sleeps again. A slow re-check every
RECHECK_SECONDS covers a change signal that never came (a cache hiccup). Under WSGI (the test
server, runserver) there is no Hub loop to rely on: the task is read every WSGI_POLL_SECONDS.

Each read runs on a pool thread (thread_sensitive=False) whose connection is closed at once, as
the event stream's are: waits are many and long, reads few and short.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from generator import live
from generator.models import FINISHED_STATUSES, Task

from .http import in_pool

RECHECK_SECONDS = 5.0
WSGI_POLL_SECONDS = 0.25


@dataclass(frozen=True)
class Outcome:
    """How a wait ended: the task as last read (None: deleted meanwhile), and whether the server
    is shutting down (the wait was cut short)."""

    task: Task | None
    stopping: bool = False

    @property
    def finished(self) -> bool:
        return self.task is None or self.task.status in FINISHED_STATUSES


def _read(task_id: uuid.UUID, owner_id: int) -> Task | None:
    return Task.objects.filter(pk=task_id, owner_id=owner_id).first()


async def wait_for_task(task_id: uuid.UUID, owner_id: int, *, seconds: float, hub: bool) -> Outcome:
    """Wait up to `seconds` for the task to finish (hub: wake on the owner's change signal)."""
    read = in_pool(_read)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    changed = live.HUB.watch(owner_id, counted=False) if hub else None
    try:
        while True:
            task = await read(task_id, owner_id)
            outcome = Outcome(task)
            remaining = deadline - loop.time()
            if outcome.finished or remaining <= 0:
                return outcome
            if changed is None:
                await asyncio.sleep(min(remaining, WSGI_POLL_SECONDS))
                continue
            try:
                async with asyncio.timeout(min(remaining, RECHECK_SECONDS)):
                    await changed.wait()
            except TimeoutError:
                pass
            changed.clear()
            if live.HUB.stopping:
                return Outcome(await read(task_id, owner_id), stopping=True)
    finally:
        if changed is not None:
            live.HUB.unwatch(owner_id, changed)
