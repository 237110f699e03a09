"""The claim: which task runs next, taken by one worker with one conditional UPDATE.

A queue message only says "a worker is free" (generator.jobs.dispatch); the database decides
what it runs. Runnable are: tasks waiting to be sent (pending, or retrying once their
next_attempt_at is due) whose provider is under its limits, and vendor jobs whose next look is
due (in `processing`, held by nobody; they already count against their provider's limit, so
they are never held back by it). Fair order: the person with the fewest tasks running first;
then the person whose last task started longest ago (someone never served first); then the
person with fewer tasks waiting (one picture does not wait behind a batch); then the oldest
task.

Claims are serialised so the limits cannot be overshot: SQLite's IMMEDIATE transactions take
the write lock at BEGIN (config/settings.py); on PostgreSQL a transaction-level advisory lock
does the same for claims only, and `FOR UPDATE SKIP LOCKED` passes over a row another
transaction is changing (a cancel, a heartbeat) instead of waiting for it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Count, F, Max, Min, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from .. import live
from ..models import CLAIMABLE_STATUSES, Task, error_fields
from . import limits

logger = logging.getLogger(__name__)

# Any constant: the key of the advisory lock every claim on PostgreSQL takes.
CLAIM_LOCK_KEY = 0x61746C6965  # "atlie"
# How far back "when did this person's last task start" looks (bounds the subquery's scan).
RECENT_START_WINDOW = timedelta(days=1)


def due(now: datetime) -> Q:
    return Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)


def waiting_to_send(now: datetime) -> Q:
    return Q(status__in=CLAIMABLE_STATUSES) & due(now)


def job_check_due(now: datetime) -> Q:
    return Q(status=Task.Status.PROCESSING, held_by="", provider_job__isnull=False) & due(now)


def runnable(now: datetime, full: set[str]) -> QuerySet[Task]:
    """Tasks a free worker may take now, given the providers that are at their limits."""
    sendable = waiting_to_send(now) & ~Q(provider__in=full) if full else waiting_to_send(now)
    return Task.objects.filter(sendable | job_check_due(now))


def owners_in_fair_order(tasks: QuerySet[Task], now: datetime) -> list[tuple[int, datetime]]:
    """The owners of these tasks, the one to serve first first, each with the creation time of
    their oldest task among them.

    Each rule is counted once per owner, in one grouped query over the few rows it concerns
    (the tasks running, those waiting, the recent starts), not once per waiting task: a burst
    of a few hundred tasks is sorted in a few milliseconds, not in a quadratic scan.
    """
    oldest = dict(tasks.order_by().values("owner").annotate(first=Min("created_at")).values_list("owner", "first"))
    if len(oldest) < 2:
        return list(oldest.items())
    owners = tasks.order_by().values("owner")
    running = _count_by_owner(Task.objects.filter(owner__in=owners, status=Task.Status.PROCESSING))
    waiting = _count_by_owner(Task.objects.filter(owner__in=owners, status__in=CLAIMABLE_STATUSES))
    last_start = dict(
        Task.objects.filter(owner__in=owners, created_at__gte=now - RECENT_START_WINDOW)
        .order_by()
        .values("owner")
        .annotate(last=Max("started_at"))
        .values_list("owner", "last")
    )

    def rank(owner: int) -> tuple:
        last = last_start.get(owner)
        never_served = last is None
        return (running.get(owner, 0), not never_served, last or now, waiting.get(owner, 0), oldest[owner], owner)

    return [(owner, oldest[owner]) for owner in sorted(oldest, key=rank)]


def _count_by_owner(tasks: QuerySet[Task]) -> dict[int, int]:
    return dict(tasks.order_by().values("owner").annotate(n=Count("pk")).values_list("owner", "n"))


def claim_next(worker: str, now: datetime | None = None) -> Task | None:
    """Take the next runnable task for `worker`, or None when nothing may run now."""
    with transaction.atomic():
        _serialise_claims()
        # Read the clock once the lock is ours: a rate's window counts the real start.
        now = now or timezone.now()
        providers = set(
            Task.objects.filter(waiting_to_send(now)).values_list("provider", flat=True).distinct().order_by()
        )
        candidates = runnable(now, limits.full_providers(providers, now))
        for owner, oldest in owners_in_fair_order(candidates, now):
            # From their oldest runnable task on: SQLite walks the (owner, created_at) index
            # from there, not through everything the person ever made (10 ms at 10,000 tasks).
            theirs = candidates.filter(owner=owner, created_at__gte=oldest).order_by("created_at", "id")
            if connection.features.has_select_for_update_skip_locked:
                theirs = theirs.select_for_update(skip_locked=True, of=("self",))
            task = theirs.first()
            # None only when another transaction holds all of this person's rows (a cancel).
            if task is not None:
                return _take(task, worker, now)
        return None


def claim(task: Task, worker: str, now: datetime | None = None) -> Task | None:
    """Take this task if it is runnable now, limits aside (tests and `manage.py generate`)."""
    now = now or timezone.now()
    with transaction.atomic():
        _serialise_claims()
        found = runnable(now, set()).filter(pk=task.pk).first()
        return _take(found, worker, now) if found is not None else None


def _take(task: Task, worker: str, now: datetime) -> Task | None:
    """The conditional UPDATE, on the row exactly as read. A new send counts an attempt and a
    call against the provider's rate; a look at a vendor job counts neither."""
    sending = task.provider_job is None
    changes: dict = {
        "status": Task.Status.PROCESSING,
        "held_by": worker,
        "heartbeat_at": now,
        "claimed_at": now,
        "started_at": Coalesce("started_at", Value(now)),
    }
    if sending:
        changes |= {"attempts": F("attempts") + 1, "next_attempt_at": None, **error_fields("", "")}
    taken = Task.objects.filter(
        pk=task.pk, status=task.status, held_by=task.held_by, next_attempt_at=task.next_attempt_at
    ).update(**changes)
    if not taken:
        return None
    if sending:
        limits.record_call(task.provider, now)
    live.task_changed(task.owner_id)
    task.refresh_from_db()
    return task


def _serialise_claims() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CLAIM_LOCK_KEY])


def stale_holds(now: datetime, timeout: float) -> QuerySet[Task]:
    """Tasks held by a worker that stopped beating (SIGKILL, out of memory, a lost machine)."""
    cutoff = now - timedelta(seconds=timeout)
    return (
        Task.objects.filter(status=Task.Status.PROCESSING)
        .exclude(held_by="")
        .filter(Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, claimed_at__lt=cutoff))
    )
