"""AUDIT_RETENTION_DAYS: entries older than that many days are deleted by the daily retention
schedule (generator.ops.maintenance.retention_cleanup); 0 keeps them forever. This is the only
place an entry is ever deleted."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from .models import AuditEntry

logger = logging.getLogger(__name__)


def retention_days() -> int:
    return max(0, int(getattr(settings, "AUDIT_RETENTION_DAYS", 0) or 0))


def prune(now: datetime | None = None) -> int:
    """Delete the entries older than AUDIT_RETENTION_DAYS; how many went (0 when it is 0)."""
    days = retention_days()
    if not days:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=days)
    deleted, _by_model = AuditEntry.objects.filter(at__lt=cutoff).delete()
    if deleted:
        logger.info("audit retention: deleted %s entries older than %s days", deleted, days)
    return deleted


def summary(deleted: int) -> str:
    """For the schedule's result: nothing when nothing went."""
    if not deleted:
        return ""
    return f"Deleted {deleted} audit {'entry' if deleted == 1 else 'entries'} older than {retention_days()} days."
