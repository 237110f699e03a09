"""Atelier's django-q2 schedules: the minute-by-minute sweeper, the hourly provider catalogue
check, Explore's popular scores every 10 minutes, the optional nightly retention and the
optional backup (BACKUP_SCHEDULE).

`migrate` installs them (post_migrate, wired in apps.py), and so does `manage.py
setup_schedules`. Each is kept by name, created or updated in place; the functions they run
are the entry points in generator.jobs.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django_q.conf import croniter
from django_q.models import Schedule

from .maintenance import retention_days

RECOVERY_SCHEDULE_NAME = "atelier-recover-tasks"
RECOVERY_SCHEDULE_FUNC = "generator.jobs.recover_tasks"
RETENTION_SCHEDULE_NAME = "atelier-retention-cleanup"
RETENTION_SCHEDULE_FUNC = "generator.jobs.retention_cleanup"
CATALOGUE_SCHEDULE_NAME = "atelier-check-providers"
CATALOGUE_SCHEDULE_FUNC = "generator.jobs.check_providers"
# Explore's "popular" scores, recomputed from the last 7 days (sharing/reactions.py).
POPULAR_SCHEDULE_NAME = "atelier-refresh-popular"
POPULAR_SCHEDULE_FUNC = "sharing.reactions.refresh_popular_scores"
POPULAR_SCHEDULE_MINUTES = 10
# manage.py backup on BACKUP_SCHEDULE: hourly, daily, weekly, or a cron expression (croniter).
BACKUP_SCHEDULE_NAME = "atelier-backup"
BACKUP_SCHEDULE_FUNC = "generator.jobs.make_backup"
BACKUP_KEYWORDS = {"hourly": Schedule.HOURLY, "daily": Schedule.DAILY, "weekly": Schedule.WEEKLY}
OPTIONAL_SCHEDULES = (RETENTION_SCHEDULE_NAME, BACKUP_SCHEDULE_NAME)


def backup_schedule() -> dict[str, Any] | None:
    """BACKUP_SCHEDULE as schedule fields, None when empty (off); a clear error when invalid."""
    value = settings.BACKUP_SCHEDULE.strip()
    if not value:
        return None
    if value.lower() in BACKUP_KEYWORDS:
        return {"schedule_type": BACKUP_KEYWORDS[value.lower()], "cron": None}
    if croniter is None:
        raise ImproperlyConfigured(
            f"BACKUP_SCHEDULE={value!r} is a cron expression, which needs the croniter package "
            "(pip install 'django-q2[croniter]'); or use hourly, daily or weekly."
        )
    if not croniter.is_valid(value):
        raise ImproperlyConfigured(
            f"BACKUP_SCHEDULE={value!r} is not a cron expression (e.g. '30 3 * * *') nor hourly, daily or weekly."
        )
    return {"schedule_type": Schedule.CRON, "cron": value}


def wanted_schedules() -> dict[str, dict[str, Any]]:
    """The schedules this configuration needs, by name (retention only when RETENTION_DAYS is set)."""
    common = {"args": None, "kwargs": None, "hook": None, "repeats": -1, "cluster": None}
    wanted = {
        RECOVERY_SCHEDULE_NAME: {
            **common,
            "func": RECOVERY_SCHEDULE_FUNC,
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
        },
        CATALOGUE_SCHEDULE_NAME: {**common, "func": CATALOGUE_SCHEDULE_FUNC, "schedule_type": Schedule.HOURLY},
        POPULAR_SCHEDULE_NAME: {
            **common,
            "func": POPULAR_SCHEDULE_FUNC,
            "schedule_type": Schedule.MINUTES,
            "minutes": POPULAR_SCHEDULE_MINUTES,
        },
    }
    if retention_days():
        wanted[RETENTION_SCHEDULE_NAME] = {**common, "func": RETENTION_SCHEDULE_FUNC, "schedule_type": Schedule.DAILY}
    backup = backup_schedule()
    if backup is not None:
        wanted[BACKUP_SCHEDULE_NAME] = {**common, "func": BACKUP_SCHEDULE_FUNC, **backup}
    return wanted


def install_schedules(using: str = DEFAULT_DB_ALIAS) -> dict[str, bool]:
    """Create or update Atelier's schedules by name, and remove retention and backup when off.

    Idempotent; returns {name: created} for the schedules now installed.
    """
    wanted = wanted_schedules()
    results = {}
    with transaction.atomic(using=using):
        Schedule.objects.using(using).filter(name__in=set(OPTIONAL_SCHEDULES) - set(wanted)).delete()
        for name, values in wanted.items():
            rows = Schedule.objects.using(using).filter(name=name)
            # update_or_create needs one row per name; the name is not unique in django-q2.
            first = rows.order_by("pk").values_list("pk", flat=True).first()
            if first is not None:
                rows.exclude(pk=first).delete()
            _schedule, results[name] = rows.update_or_create(name=name, defaults=values)
    return results


def install_schedules_after_migrate(
    using: str = DEFAULT_DB_ALIAS, verbosity: int = 1, stdout: TextIO | None = None, **kwargs: object
) -> None:
    """post_migrate receiver: install the schedules once django-q2's table exists."""
    if Schedule._meta.db_table not in connections[using].introspection.table_names():
        return
    results = install_schedules(using=using)
    if verbosity >= 2:
        for name, created in results.items():
            (stdout or sys.stdout).write(f"  {'Created' if created else 'Updated'} django-q2 schedule {name}\n")
