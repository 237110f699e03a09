"""Recovery of tasks whose worker or queue message was lost, so that no task spins forever.

`recover_tasks()` is the one entry point: a django-q2 Schedule runs it every minute
(generator.ops.schedules, through generator.jobs.recover_tasks) and `manage.py recover_tasks`
runs it on demand.

How it decides (thresholds from settings, read on every run):

- **processing** whose last claim is older than TASK_TIMEOUT + RECOVERY_GRACE_SECONDS: django-q2
  stops a run at its timeout (its guard kills the worker 3 s later), so the worker is gone
  (SIGKILL, out of memory, a lost machine). The task goes back to `retrying` and onto the queue,
  or ends `failed` ("worker_lost") when it has used all PROVIDER_MAX_ATTEMPTS.
- **retrying inside a worker's backoff** (not enqueued since its last claim) for as long: the
  worker died while waiting to try again. Re-enqueued, or failed when out of attempts.
- **waiting on the queue** (pending, or retrying after recovery put it back) since longer than
  REQUEUE_PENDING_AFTER_SECONDS: the queue message was lost (the Redis broker drops messages it
  handed to a worker that crashed). Re-enqueued.

Every change is a conditional UPDATE on the row exactly as it was read (status, claimed_at,
enqueued_at), so a slow worker that finishes meanwhile, a new delivery that claimed the task, or a
second sweeper running at the same time is never disturbed. An extra delivery is harmless:
run_task claims conditionally and skips a task that is not claimable.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .. import services
from ..models import Task, error_fields
from ..reasons import Reason

logger = logging.getLogger(__name__)

WORKER_LOST = "worker_lost"
MESSAGES = {
    "retrying": _("The worker stopped while generating; trying again."),
    "failed": _("The worker stopped while generating; please retry."),
}
DEFAULT_GRACE_SECONDS = 60
DEFAULT_REQUEUE_PENDING_AFTER_SECONDS = 600

# What recovery does to one task.
RETRY = "retry"  # processing, worker lost → retrying, re-enqueued
RESUME = "resume"  # retrying in a dead worker's backoff → re-enqueued
REQUEUE = "requeue"  # waiting on the queue, message lost → re-enqueued
FAIL = "fail"  # worker lost and no attempts left → failed


@dataclass
class RecoveryReport:
    """What one recovery run did (or, with dry_run, would do): task ids per outcome."""

    dry_run: bool = False
    retrying: list[uuid.UUID] = field(default_factory=list)
    failed: list[uuid.UUID] = field(default_factory=list)
    requeued: list[uuid.UUID] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.retrying) + len(self.failed) + len(self.requeued)

    def summary(self) -> str:
        counts = f"{len(self.retrying)} retrying, {len(self.failed)} failed, {len(self.requeued)} re-enqueued"
        noun = "task" if self.total == 1 else "tasks"
        if self.dry_run:
            return f"Dry run: would recover {self.total} {noun}: {counts}. Nothing was changed."
        return f"Recovered {self.total} {noun}: {counts}."


@dataclass(frozen=True)
class Limits:
    claim_cutoff: datetime  # a claim older than this has no live worker
    queue_cutoff: datetime  # an enqueue older than this has lost its message
    max_attempts: int

    @classmethod
    def at(cls, now: datetime) -> Limits:
        grace = getattr(settings, "RECOVERY_GRACE_SECONDS", DEFAULT_GRACE_SECONDS)
        requeue_after = getattr(settings, "REQUEUE_PENDING_AFTER_SECONDS", DEFAULT_REQUEUE_PENDING_AFTER_SECONDS)
        return cls(
            claim_cutoff=now - timedelta(seconds=settings.TASK_TIMEOUT + grace),
            queue_cutoff=now - timedelta(seconds=requeue_after),
            max_attempts=settings.PROVIDER_MAX_ATTEMPTS,
        )


def recover_tasks(now: datetime | None = None, *, dry_run: bool = False) -> RecoveryReport:
    """Find tasks whose worker or queue message was lost and retry, fail or re-enqueue them.

    `now` sets the clock the thresholds are measured from (tests); dry_run only reports.
    """
    limits = Limits.at(now or timezone.now())
    report = RecoveryReport(dry_run=dry_run)
    for task in _candidates(limits):
        action = decide(task, limits)
        if action is None or (not dry_run and not _apply(task, action)):
            continue
        outcome = {RETRY: report.retrying, FAIL: report.failed}.get(action, report.requeued)
        outcome.append(task.pk)
    if report.total and not dry_run:
        logger.info("recovery: %s", report.summary())
    return report


def _candidates(limits: Limits) -> list[Task]:
    """Active tasks that may be lost; decide() has the last word (the sweeper's index serves it)."""
    stale_claim = Q(claimed_at__lt=limits.claim_cutoff) | Q(claimed_at__isnull=True, created_at__lt=limits.claim_cutoff)
    stale_enqueue = Q(enqueued_at__lt=limits.queue_cutoff) | Q(
        enqueued_at__isnull=True, created_at__lt=limits.queue_cutoff
    )
    return list(
        Task.objects.filter(
            Q(stale_claim, status=Task.Status.PROCESSING)
            | Q(stale_claim | stale_enqueue, status=Task.Status.RETRYING)
            | Q(stale_enqueue, status=Task.Status.PENDING)
        )
        .only("id", "status", "provider", "attempts", "created_at", "started_at", "claimed_at", "enqueued_at")
        .order_by("created_at", "id")
    )


def decide(task: Task, limits: Limits) -> str | None:
    """The action for one task as read, or None when it is not lost."""
    if task.status == Task.Status.PROCESSING:
        if (task.claimed_at or task.started_at or task.created_at) >= limits.claim_cutoff:
            return None
        return RETRY if task.attempts < limits.max_attempts else FAIL
    if task.status == Task.Status.RETRYING:
        enqueued_at = task.enqueued_at
        if enqueued_at is not None and (task.claimed_at is None or enqueued_at > task.claimed_at):  # on the queue
            lost, action = enqueued_at < limits.queue_cutoff, REQUEUE
        else:  # between attempts inside a worker, which re-claims it itself
            lost, action = (task.claimed_at or task.created_at) < limits.claim_cutoff, RESUME
        if not lost:
            return None
        # The next claim would be one attempt too many.
        return action if task.attempts < limits.max_attempts else FAIL
    if task.status == Task.Status.PENDING:
        return REQUEUE if (task.enqueued_at or task.created_at) < limits.queue_cutoff else None
    return None


def _apply(task: Task, action: str) -> bool:
    """Change the row only if it is still exactly as read; enqueue after commit. True if changed."""
    now = timezone.now()
    changes: dict[str, object]
    if action == RETRY:
        changes = {"status": Task.Status.RETRYING, **_worker_lost("retrying")}
    elif action == RESUME:
        changes = _worker_lost("retrying")
    elif action == FAIL:
        changes = {"status": Task.Status.FAILED, "finished_at": now, **_worker_lost("failed")}
    else:
        changes = {}
    enqueue = action != FAIL
    if enqueue:
        # Marks the task as on the queue in the same UPDATE, so a concurrent sweeper skips it.
        changes["enqueued_at"] = now
    with transaction.atomic():
        updated = Task.objects.filter(
            pk=task.pk, status=task.status, claimed_at=task.claimed_at, enqueued_at=task.enqueued_at
        ).update(**changes)
        if updated and enqueue:
            transaction.on_commit(partial(services.enqueue, task))
    if not updated:
        logger.info("task %s changed during recovery; left alone", task.pk)
        return False
    if action == RETRY:
        logger.info(
            "task %s worker lost; retrying provider=%s attempt=%s of %s",
            task.pk,
            task.provider,
            task.attempts + 1,
            settings.PROVIDER_MAX_ATTEMPTS,
        )
    elif action == RESUME:
        logger.info("task %s worker lost during backoff; re-enqueued provider=%s", task.pk, task.provider)
    elif action == REQUEUE:
        logger.info("task %s %s too long on the queue; re-enqueued provider=%s", task.pk, task.status, task.provider)
    else:
        logger.info("task %s worker lost; failed provider=%s attempts=%s", task.pk, task.provider, task.attempts)
    return True


def _worker_lost(outcome: str) -> dict[str, object]:
    """The error columns for a task whose worker was lost (English text, untranslated Reason)."""
    return error_fields(WORKER_LOST, Reason(MESSAGES[outcome]))
