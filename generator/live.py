"""Live updates: what changed for whom, so that open pages hear of it at once.

Every code path that changes what a person sees of a task (status, progress, images, a note)
calls task_changed() with the task's owner after its write is committed.

The signal crosses processes (the worker writes, the web server streams) through the 'default'
cache, which both share: the file cache on one machine, Redis with REDIS_URL. A change stores a
new value under the owner's key, then the same value under one key for everybody (ANY_KEY).
Every POLL_SECONDS (25 ms) the web process reads that one key, and only when it moved (or a new
person opened a stream) the keys of the people with open streams: one read per process, not
one per stream (Hub). Only a stream whose owner's value moved asks the database what changed
(changes()).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from datetime import timedelta
from functools import partial
from typing import Any

from asgiref.sync import sync_to_async
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .models import ACTIVE_STATUSES, Task

logger = logging.getLogger(__name__)

# How often an open stream's owner is looked at: the delay a change may wait before it is sent.
POLL_SECONDS = 0.025
KEY = "live:owner:{}"
# Moves with every owner's key, after it: most ticks find it unmoved and read nothing else
# (40 owners' keys are 40 file reads under the file cache; this is one).
ANY_KEY = "live:any"
# Long enough for any stream to have seen a change; a missing key reads as "no change yet".
KEY_TTL = 24 * 3600
# A finished task stays in a stream's view this long after it ends (a page that opened a
# little later still hears of the end).
RECENT = timedelta(minutes=10)


def task_changed(owner_id: int) -> None:
    """Tell the owner's open pages that one of their tasks changed (after the write commits)."""
    transaction.on_commit(partial(_publish, owner_id))


def _publish(owner_id: int) -> None:
    marker = time.time_ns()
    try:
        # The owner's key first: a reader that sees ANY_KEY move then finds the owner's too.
        cache.set(KEY.format(owner_id), marker, KEY_TTL)
        cache.set(ANY_KEY, marker, KEY_TTL)
    except Exception:  # a live update is a nicety: never fail the write that caused it
        logger.warning("could not publish a task change for owner %s", owner_id, exc_info=True)


def versions(owner_ids: Iterable[int]) -> dict[int, Any]:
    """The current change marker of each owner (absent: no change since the key expired)."""
    keys = {KEY.format(owner_id): owner_id for owner_id in owner_ids}
    if not keys:
        return {}
    return {keys[key]: value for key, value in cache.get_many(list(keys)).items()}


# --- what a stream sends -----------------------------------------------------------------

Snapshot = dict[str, tuple]


def snapshot(owner_id: int, since: Any) -> Snapshot:
    """What the owner's pages show of their current tasks: one indexed query."""
    rows = (
        Task.objects.filter(owner_id=owner_id)
        .filter(Q(status__in=ACTIVE_STATUSES) | Q(finished_at__gte=since) | Q(created_at__gte=since))
        .order_by()
        .values_list("id", "status", "progress", "provider", "attempts", "error_code", "next_attempt_at")
    )
    return {str(row[0]): row[1:] for row in rows}


def changes(before: Snapshot, after: Snapshot) -> list[dict[str, str]]:
    """One event per task whose shown state differs (new tasks included; gone ones are not
    sent: a deleted task's page already took it away)."""
    return [{"id": pk, "status": state[0]} for pk, state in after.items() if before.get(pk) != state]


def since() -> Any:
    return timezone.now() - RECENT


# --- one reader per web process ----------------------------------------------------------


class Hub:
    """The open streams of this process, by owner, and the one loop that watches their keys."""

    def __init__(self) -> None:
        self.watchers: dict[int, set[asyncio.Event]] = {}
        # Watchers that are not an open page's stream (the gateway's waiting generations):
        # woken like the others, but not counted against a person's streams.
        self.uncounted: set[asyncio.Event] = set()
        self.seen: dict[int, Any] = {}
        # ANY_KEY and the owners as of the last read of the owners' keys.
        self.any_seen: Any = None
        self.owners_read: set[int] = set()
        self.stopping = False
        self._task: asyncio.Task | None = None

    def count(self, owner_id: int) -> int:
        return len(self.watchers.get(owner_id, set()) - self.uncounted)

    def watch(self, owner_id: int, *, counted: bool = True) -> asyncio.Event:
        event = asyncio.Event()
        self.watchers.setdefault(owner_id, set()).add(event)
        if not counted:
            self.uncounted.add(event)
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._task = loop.create_task(self._run())
        return event

    def unwatch(self, owner_id: int, event: asyncio.Event) -> None:
        self.uncounted.discard(event)
        events = self.watchers.get(owner_id)
        if events is not None:
            events.discard(event)
            if not events:
                del self.watchers[owner_id]
                self.seen.pop(owner_id, None)

    def stop(self) -> None:
        """The server is shutting down: every stream ends at once."""
        self.stopping = True
        for events in self.watchers.values():
            for event in events:
                event.set()

    def moved(self, owner_ids: list[int]) -> dict[int, Any]:
        """The owners' markers, read only if some change was published since the last read or
        an owner is new to it; otherwise nothing (one key read)."""
        latest = cache.get(ANY_KEY)
        if latest == self.any_seen and self.owners_read.issuperset(owner_ids):
            return {}
        current = versions(owner_ids)
        self.any_seen, self.owners_read = latest, set(owner_ids)
        return current

    async def _run(self) -> None:
        read = sync_to_async(self.moved, thread_sensitive=False)
        while self.watchers and not self.stopping:
            try:
                current = await read(list(self.watchers))
            except Exception:
                logger.warning("could not read task changes", exc_info=True)
                current = {}
            for owner_id, value in current.items():
                if self.seen.get(owner_id) != value:
                    self.seen[owner_id] = value
                    for event in self.watchers.get(owner_id, ()):
                        event.set()
            await asyncio.sleep(POLL_SECONDS)


HUB = Hub()
