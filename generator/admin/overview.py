"""The data behind the admin's operations overview: read-only, a fixed number of queries.

Tasks by status and failures by error code are one aggregate query each; the queue length is
one query on the ORM broker (a Redis LLEN otherwise); worker heartbeats come from django-q2's
cluster statistics in the cache; the sweeper's schedule is one query, its last run one more;
the providers' load is two grouped counts, plus one or two per provider that has a RATE
(generator.scheduler.limits.snapshot); the sign-ups waiting for approval one more.
Anything outside the database (broker, cache) that fails is shown as unavailable, never a 500.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db.models import Count, JSONField, Max, OuterRef, QuerySet, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_q import brokers
from django_q.models import Schedule
from django_q.models import Task as QTask
from django_q.status import Stat

from ..models import Task
from ..ops import backups, health
from ..ops.schedules import RECOVERY_SCHEDULE_NAME
from ..reasons import Reason
from ..scheduler import limits as provider_limits

logger = logging.getLogger(__name__)

FAILURE_WINDOW = timedelta(hours=24)
WAITING_SHOWN = 20  # sign-ups listed by name; the rest are counted
# A schedule whose next run is this far in the past is not being run: no cluster is up.
SCHEDULE_OVERDUE_AFTER = timedelta(minutes=2)
READINESS_LABELS = {
    "database": gettext_lazy("Database"),
    "broker": gettext_lazy("Broker"),
    "storage": gettext_lazy("Media storage"),
    "worker": gettext_lazy("Worker"),
    "providers": gettext_lazy("Providers"),
}


@dataclass(frozen=True)
class StatusCount:
    status: str
    label: str
    count: int


@dataclass(frozen=True)
class FailureGroup:
    error_code: str
    count: int
    sample_message: str
    last_failed_at: datetime | None


@dataclass(frozen=True)
class Queue:
    broker: str
    size: int | None
    error: str = ""


@dataclass(frozen=True)
class Cluster:
    cluster_id: str
    host: str
    status: str
    workers: int
    uptime_seconds: float | None
    last_seen: datetime | None
    reincarnations: int


@dataclass(frozen=True)
class Heartbeats:
    clusters: list[Cluster]
    remembered_seconds_ago: float | None  # readiness's last sighting of any cluster
    error: str = ""


@dataclass(frozen=True)
class SweeperSchedule:
    name: str
    installed: bool
    next_run: datetime | None = None
    overdue: bool = False
    last_run_started: datetime | None = None
    last_run_stopped: datetime | None = None
    last_run_success: bool | None = None
    last_run_result: str = ""


@dataclass(frozen=True)
class WaitingAccount:
    pk: int
    username: str
    date_joined: datetime


@dataclass(frozen=True)
class Signups:
    mode: str  # settings.SIGNUP: open, approval or closed
    waiting: list[WaitingAccount]  # the oldest first, at most WAITING_SHOWN
    waiting_count: int


@dataclass(frozen=True)
class Overview:
    generated_at: datetime
    statuses: list[StatusCount]
    total_tasks: int
    failures_since: datetime
    failures: list[FailureGroup]
    queue: Queue
    heartbeats: Heartbeats
    sweeper: SweeperSchedule
    readiness: list[tuple[str, dict]] = field(default_factory=list)  # what /readyz checks: (label, result)
    # Each enabled provider's limits and load (provider_limits.snapshot): name, concurrency,
    # rate, fallback, in_flight, queued, rate_wait_seconds.
    providers: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    signups: Signups | None = None
    last_backup: backups.LastBackup | None = None  # the newest archive in BACKUP_DIR (name and size only)


def task_counts() -> list[StatusCount]:
    """Every status with its count (zero included), in the order of the status choices."""
    counts = dict(Task.objects.order_by().values_list("status").annotate(count=Count("pk")))
    return [StatusCount(value, str(label), counts.get(value, 0)) for value, label in Task.Status.choices]


def recent_failures(now: datetime, window: timedelta = FAILURE_WINDOW) -> list[FailureGroup]:
    """Tasks failed within the window, grouped by error code, most frequent first, each with
    its latest reason in the reader's language (older rows: the stored English)."""
    failed = Task.objects.filter(status=Task.Status.FAILED, finished_at__gte=now - window)
    latest = failed.filter(error_code=OuterRef("error_code")).order_by("-finished_at")
    rows = (
        failed.order_by()
        .values("error_code")
        .annotate(
            count=Count("pk"),
            last=Max("finished_at"),
            message=Subquery(latest.values("error_message")[:1]),
            reason=Subquery(latest.values("error_reason")[:1], output_field=JSONField()),
        )
        .order_by("-count", "error_code")
    )
    return [
        FailureGroup(row["error_code"], row["count"], _sample(row["reason"], row["message"]), row["last"])
        for row in rows
    ]


def _sample(stored_reason, message: str | None) -> str:
    reason = Reason.from_json(stored_reason)
    return reason.render() if reason is not None else message or ""


def queue_length() -> Queue:
    try:
        broker = brokers.get_broker()
        kind = type(broker).__name__.lower()
        size = broker.queue_size()
    except Exception as error:
        logger.warning("overview: broker queue size failed: %s", type(error).__name__, exc_info=True)
        return Queue(
            broker="unknown",
            size=None,
            error=_("The broker did not answer (%(error)s).") % {"error": type(error).__name__},
        )
    return Queue(broker=kind, size=size if isinstance(size, int) else None)


def worker_heartbeats(now: datetime) -> Heartbeats:
    remembered = _remembered_sighting(now)
    try:
        stats = Stat.get_all()
    except Exception as error:
        logger.warning("overview: cluster statistics failed: %s", type(error).__name__, exc_info=True)
        return Heartbeats(
            [], remembered, error=_("Cluster statistics are unavailable (%(error)s).") % {"error": type(error).__name__}
        )
    clusters = [_cluster(stat, now) for stat in stats]
    clusters.sort(key=lambda cluster: (cluster.host, cluster.cluster_id))
    return Heartbeats(clusters, remembered)


def _cluster(stat: object, now: datetime) -> Cluster:
    tob = getattr(stat, "tob", None)
    return Cluster(
        cluster_id=str(getattr(stat, "cluster_id", "")),
        host=str(getattr(stat, "host", "")),
        status=str(getattr(stat, "status", "")),
        workers=len(getattr(stat, "workers", None) or []),
        uptime_seconds=round((now - tob).total_seconds()) if isinstance(tob, datetime) else None,
        last_seen=getattr(stat, "timestamp", None),
        reincarnations=int(getattr(stat, "reincarnations", 0) or 0),
    )


def _remembered_sighting(now: datetime) -> float | None:
    try:
        seen = cache.get(health.WORKER_SEEN_KEY)
    except Exception:
        logger.warning("overview: cache read failed", exc_info=True)
        return None
    # Readiness may have seen a cluster a moment after `now` (build runs it first): that is now.
    return max(0.0, round(now.timestamp() - seen, 1)) if isinstance(seen, (int, float)) else None


def sweeper_schedule(now: datetime) -> SweeperSchedule:

    schedule = Schedule.objects.filter(name=RECOVERY_SCHEDULE_NAME).order_by("pk").only("next_run", "task").first()
    if schedule is None:
        return SweeperSchedule(RECOVERY_SCHEDULE_NAME, installed=False)
    last = None
    if schedule.task:
        last = QTask.objects.filter(pk=schedule.task).only("started", "stopped", "success", "result").first()
    overdue = schedule.next_run is not None and schedule.next_run < now - SCHEDULE_OVERDUE_AFTER
    return SweeperSchedule(
        name=RECOVERY_SCHEDULE_NAME,
        installed=True,
        next_run=schedule.next_run,
        overdue=overdue,
        last_run_started=last.started if last else None,
        last_run_stopped=last.stopped if last else None,
        last_run_success=last.success if last else None,
        last_run_result=str(last.result) if last and last.result is not None else "",
    )


def waiting_for_approval() -> QuerySet[User]:
    """Sign-ups waiting for staff (SIGNUP=approval makes them inactive): inactive accounts that
    never signed in. A person staff turned off after they had used the site is not listed."""
    return User.objects.filter(is_active=False, last_login__isnull=True, is_staff=False)


def signups() -> Signups:
    waiting = waiting_for_approval()
    rows = list(waiting.order_by("date_joined", "pk").values_list("pk", "username", "date_joined")[:WAITING_SHOWN])
    return Signups(
        mode=settings.SIGNUP,
        waiting=[WaitingAccount(pk, username, joined) for pk, username, joined in rows],
        # Counted only when the list is full: one query in the usual case.
        waiting_count=len(rows) if len(rows) < WAITING_SHOWN else waiting.count(),
    )


def catalogue_problems(providers_check: dict) -> list[str]:
    """What the providers' last catalogue checks found wrong, from readiness's providers check."""
    problems = []
    for name, found in sorted(providers_check.get("providers", {}).items()):
        if not found["reachable"]:
            problems.append(
                _("%(provider)s failed its last check: %(error)s")
                % {"provider": name, "error": found.get("message") or found.get("error", "")}
            )
        if found["retired_models"]:
            problems.append(
                _(
                    "%(provider)s no longer offers %(models)s: hidden from the create page and the API until the "
                    "model list is changed."
                )
                % {"provider": name, "models": ", ".join(found["retired_models"])}
            )
    return problems


def build(now: datetime | None = None) -> Overview:
    now = now or timezone.now()
    statuses = task_counts()
    queue = queue_length()
    # Readiness first: its worker check records a live cluster as seen, so the sighting read
    # with the heartbeats below is this moment's, not an older one (or none, before any /readyz).
    readiness = health.run_checks()
    heartbeats = worker_heartbeats(now)
    sweeper = sweeper_schedule(now)
    problems = []
    if queue.error:
        problems.append(queue.error)
    if heartbeats.error:
        problems.append(heartbeats.error)
    elif not heartbeats.clusters:
        problems.append(_("No django-q2 cluster is reporting: queued tasks are not being run."))
    if not sweeper.installed:
        problems.append(_("The sweeper schedule is not installed: run `manage.py migrate`."))
    elif sweeper.overdue:
        problems.append(_("The sweeper's next run is overdue: no cluster is running schedules."))
    problems += catalogue_problems(readiness.get("providers", {}))
    return Overview(
        generated_at=now,
        statuses=statuses,
        total_tasks=sum(row.count for row in statuses),
        failures_since=now - FAILURE_WINDOW,
        failures=recent_failures(now),
        queue=queue,
        heartbeats=heartbeats,
        sweeper=sweeper,
        readiness=[(str(READINESS_LABELS.get(name, name)), result) for name, result in readiness.items()],
        providers=provider_limits.snapshot(now),
        problems=problems,
        signups=signups(),
        last_backup=backups.last_backup(),
    )
