"""Each worker cluster's dispatcher: wakes free workers when steps fall due.

Runs in the main process of `manage.py qcluster` (generator/management/commands/qcluster.py),
beside django-q2's sentinel, and is the only part of Atelier that sleeps between looks. Every
DISPATCH_INTERVAL_SECONDS it takes back tasks held by dead workers, counts what may run now
(respecting each provider's limits) and tops the broker's queue up to that many messages, at
most one per worker. Several clusters may run it at once: messages name no task, so extra ones
find nothing to claim.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.db.models import Count
from django.utils import timezone
from django_q.brokers import Broker
from django_q.conf import Conf

from ..models import Task
from . import claim, limits, recovery
from .queue import connect, queued_messages, wake

logger = logging.getLogger(__name__)

PRUNE_EVERY_SECONDS = 60.0


def runnable_now(now: datetime) -> int:
    """How many steps could start now: due looks at vendor jobs, plus waiting tasks that fit
    in their provider's free slots (a rate-limited provider counts as one at most)."""
    checks = Task.objects.filter(claim.job_check_due(now)).count()
    rows = Task.objects.filter(claim.waiting_to_send(now)).values("provider").annotate(n=Count("pk")).order_by()
    waiting = {row["provider"]: row["n"] for row in rows}
    flying = limits.in_flight()
    sendable = 0
    for provider, count in waiting.items():
        limit = limits.limit_for(provider)
        free = max(0, limit.concurrency - flying.get(provider, 0))
        if limit.rate is not None:
            free = min(free, 1 if limits.rate_wait(limit, now) == 0 else 0)
        sendable += min(count, free)
    return checks + sendable


def tick(workers: int, broker: Broker | None = None) -> int:
    """One look: take back dead workers' tasks, then wake workers for what may run. Messages sent."""
    now = timezone.now()
    recovery.take_back_stale(now)
    wanted = min(runnable_now(now), workers)
    missing = wanted - queued_messages(broker)
    if missing > 0:
        wake(missing, broker)
        return missing
    return 0


def prune_calls(now: datetime) -> None:
    window = limits.longest_window_seconds()
    limits.forget_calls_before(now - timedelta(seconds=max(window, 60.0) * 2))


def run(keep_going: Callable[[], bool], workers: int | None = None) -> None:
    """Tick while keep_going(); database trouble is logged and tried again on the next tick."""
    workers = workers or Conf.WORKERS
    broker = connect()
    last_prune = 0.0
    logger.info("dispatcher started workers=%s interval=%ss", workers, settings.DISPATCH_INTERVAL_SECONDS)
    while keep_going():
        try:
            tick(workers, broker)
            if time.monotonic() - last_prune > PRUNE_EVERY_SECONDS:
                prune_calls(timezone.now())
                last_prune = time.monotonic()
        except DatabaseError:
            logger.warning("dispatcher could not reach the database; trying again", exc_info=True)
            close_old_connections()
        except Exception:
            logger.exception("dispatcher tick failed")
        time.sleep(settings.DISPATCH_INTERVAL_SECONDS)
    logger.info("dispatcher stopped")
