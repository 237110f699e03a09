"""Taking back tasks whose worker died, so that no task spins forever.

A worker holding a task (generator.scheduler) records a heartbeat every HEARTBEAT_SECONDS. A
hold whose heartbeat is older than HEARTBEAT_TIMEOUT_SECONDS belongs to a worker that is gone
(SIGKILL, out of memory, a lost machine):

- a task watching a vendor job goes back to being watched: its next look is due now, and the
  job is never submitted again (**resume**);
- any other task lost its attempt: it goes to `retrying`, due now (**retry**), or ends `failed`
  ("worker_lost") when it has used all PROVIDER_MAX_ATTEMPTS (**fail**).

`take_back_stale()` runs in every worker cluster's dispatcher several times a second
(generator.scheduler.dispatcher), so a dead worker's task is back within the heartbeat timeout.
`recover_tasks()` does the same and wakes workers for anything runnable; a django-q2 Schedule runs
it every minute (generator.ops.schedules, through generator.jobs.recover_tasks) as a safety net
when no cluster's dispatcher is running, and `manage.py recover_tasks` runs it on demand.

Every change is a conditional UPDATE on the row exactly as it was read (status, holder, claimed_at,
heartbeat_at), so a slow worker that beats meanwhile, or a second sweeper, is never disturbed.
Queue messages name no task, so a lost one is replaced by the next wake and a duplicate is harmless.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .. import live
from ..models import Task, error_fields
from ..reasons import Reason
from . import claim
from .queue import wake

logger = logging.getLogger(__name__)

WORKER_LOST = "worker_lost"
MESSAGES = {
    "retrying": _("The worker stopped while generating; trying again."),
    "failed": _("The worker stopped while generating; please retry."),
}

RETRY = "retry"  # held by a dead worker, no vendor job → retrying, due now
RESUME = "resume"  # held by a dead worker while looking at a vendor job → watched again
FAIL = "fail"  # held by a dead worker and no attempts left → failed


@dataclass
class RecoveryReport:
    """What one recovery run did (or, with dry_run, would do): task ids per outcome."""

    dry_run: bool = False
    retrying: list[uuid.UUID] = field(default_factory=list)
    failed: list[uuid.UUID] = field(default_factory=list)
    resumed: list[uuid.UUID] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.retrying) + len(self.failed) + len(self.resumed)

    def summary(self) -> str:
        counts = f"{len(self.retrying)} retrying, {len(self.failed)} failed, {len(self.resumed)} resumed"
        noun = "task" if self.total == 1 else "tasks"
        if self.dry_run:
            return f"Dry run: would recover {self.total} {noun}: {counts}. Nothing was changed."
        return f"Recovered {self.total} {noun}: {counts}."


def recover_tasks(now: datetime | None = None, *, dry_run: bool = False) -> RecoveryReport:
    """Take back tasks held by dead workers, then wake a worker if anything may run."""
    now = now or timezone.now()
    report = take_back_stale(now, dry_run=dry_run)
    if not dry_run and claim.runnable(now, set()).exists():
        wake()
    return report


def take_back_stale(now: datetime | None = None, *, dry_run: bool = False) -> RecoveryReport:
    now = now or timezone.now()
    report = RecoveryReport(dry_run=dry_run)
    for task in _stale(now):
        action = decide(task)
        if not dry_run and not _apply(task, action, now):
            continue
        {RETRY: report.retrying, FAIL: report.failed, RESUME: report.resumed}[action].append(task.pk)
    if report.total and not dry_run:
        logger.info("recovery: %s", report.summary())
    return report


def _stale(now: datetime) -> list[Task]:
    """Held by a worker that stopped beating; and, from before the scheduler, tasks left in
    `processing` by nobody for longer than TASK_TIMEOUT + RECOVERY_GRACE_SECONDS."""
    legacy_cutoff = now - timedelta(seconds=settings.TASK_TIMEOUT + settings.RECOVERY_GRACE_SECONDS)
    legacy = Task.objects.filter(
        Q(claimed_at__lt=legacy_cutoff) | Q(claimed_at__isnull=True),
        status=Task.Status.PROCESSING,
        held_by="",
        provider_job__isnull=True,
    )
    stale = claim.stale_holds(now, settings.HEARTBEAT_TIMEOUT_SECONDS) | legacy
    return list(
        stale.only(
            "id", "owner", "status", "provider", "attempts", "held_by", "claimed_at", "heartbeat_at", "provider_job"
        ).order_by("created_at", "id")
    )


def decide(task: Task) -> str:
    if task.provider_job is not None:
        return RESUME
    return RETRY if task.attempts < settings.PROVIDER_MAX_ATTEMPTS else FAIL


def _apply(task: Task, action: str, now: datetime) -> bool:
    """Change the row only if it is still exactly as read. True if changed."""
    changes: dict[str, object] = {"held_by": "", "next_attempt_at": now}
    if action == RETRY:
        changes |= {"status": Task.Status.RETRYING, **_worker_lost("retrying")}
    elif action == FAIL:
        changes |= {"status": Task.Status.FAILED, "finished_at": now, "next_attempt_at": None, **_worker_lost("failed")}
    updated = Task.objects.filter(
        pk=task.pk,
        status=task.status,
        held_by=task.held_by,
        claimed_at=task.claimed_at,
        heartbeat_at=task.heartbeat_at,
    ).update(**changes)
    if not updated:
        logger.info("task %s changed during recovery; left alone", task.pk)
        return False
    live.task_changed(task.owner_id)
    logger.info(
        "task %s worker lost (%s); %s provider=%s attempts=%s",
        task.pk,
        task.held_by or "before the scheduler",
        {RETRY: "retrying", FAIL: "failed", RESUME: "watching its vendor job again"}[action],
        task.provider,
        task.attempts,
    )
    return True


def _worker_lost(outcome: str) -> dict[str, object]:
    """The error columns for a task whose worker was lost (English text, untranslated Reason)."""
    return error_fields(WORKER_LOST, Reason(MESSAGES[outcome]))
