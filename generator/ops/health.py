"""Health: /healthz (is the process up?), /readyz (can it do its job right now?) and the
API's public /api/v1/health.

HealthMiddleware answers /healthz and /readyz before host validation and HTTPS redirects, so
a container's own probes on its own address work whatever ALLOWED_HOSTS says; they are not in
the URLconf for that reason.

/readyz checks the database, the queue broker, the media storage and a worker. Each check is
a small function returning {"ok": bool, ...}; a failing one adds a short "error" that names what
failed (never an exception's text, which can carry host names,
user names or paths: that goes to the log). Every check is bounded by its client's own
timeouts (database connect/busy timeout, Redis socket timeouts, the storage client's), and
any exception is reported as that check failing, never as a 500.
"""

from __future__ import annotations

import hmac
import logging
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from django_q import brokers
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.status import Stat

from .. import catalogue
from ..limits import count_request

logger = logging.getLogger(__name__)

# A cluster saves its Stat every guard cycle (0.5 s) with a 3 s expiry; the last sighting is
# remembered so a short gap (a cluster restarting, a recycle) does not flip readiness.
WORKER_SEEN_KEY = "atelier:worker-seen"
WORKER_GRACE_SECONDS = 60
STORAGE_PROBE_PREFIX = "readiness/"
STORAGE_RESULT_KEY = "atelier:readiness-storage"

Check = Callable[[], dict]


def _failed(error: str, **extra: object) -> dict:
    return {"ok": False, "error": error, **extra}


def check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        row = cursor.fetchone()
    if not row or row[0] != 1:
        return _failed("database: SELECT 1 returned an unexpected result")
    return {"ok": True, "vendor": connection.vendor}


def check_broker() -> dict:
    broker = brokers.get_broker()
    kind = type(broker).__name__.lower()
    # The ORM broker's ping() answers True without asking anything: count its queue instead.
    # Redis (and the others that implement it) answer a real ping.
    if not isinstance(broker, ORM) and type(broker).ping is not brokers.Broker.ping:
        if not broker.ping():
            return _failed(f"broker: the {kind} broker did not answer a ping")
        return {"ok": True, "broker": kind}
    result: dict = {"ok": True, "broker": kind}
    queued = broker.queue_size()
    if isinstance(queued, int):
        result["queued"] = queued
    return result


def check_storage() -> dict:
    """Write, find and delete a probe file; the answer is kept READYZ_STORAGE_CACHE_SECONDS,
    because on a bucket each of those is a billed request."""
    cached = cache.get(STORAGE_RESULT_KEY)
    if isinstance(cached, dict):
        return dict(cached)
    result = _probe_storage()
    cache.set(STORAGE_RESULT_KEY, result, timeout=settings.READYZ_STORAGE_CACHE_SECONDS)
    return result


def _probe_storage() -> dict:
    name = default_storage.save(f"{STORAGE_PROBE_PREFIX}probe-{uuid.uuid4().hex}.txt", ContentFile(b"ready\n"))
    try:
        if not default_storage.exists(name):
            return _failed("storage: the probe file was written but cannot be found")
    finally:
        default_storage.delete(name)
    return {"ok": True}


def check_worker() -> dict:
    now = time.time()
    clusters = [stat for stat in Stat.get_all() if getattr(stat, "status", None) != Conf.STOPPED]
    if clusters:
        cache.set(WORKER_SEEN_KEY, now, timeout=24 * 3600)
        return {"ok": True, "clusters": len(clusters), "last_seen": 0}
    seen = cache.get(WORKER_SEEN_KEY)
    last_seen = round(now - seen, 1) if isinstance(seen, (int, float)) else None
    if last_seen is not None and last_seen <= WORKER_GRACE_SECONDS:
        return {"ok": True, "clusters": 0, "last_seen": last_seen}
    return _failed(
        f"worker: no django-q2 cluster has reported in the last {WORKER_GRACE_SECONDS} s",
        clusters=0,
        last_seen=last_seen,
    )


def check_providers() -> dict:
    """What the catalogue's last checks found (no provider is called here). A provider that is
    down or has retired a model leaves the site ready, since the others still work: it is named
    under "degraded"."""
    providers, degraded = {}, []
    for status in catalogue.statuses():
        entry: dict[str, object] = {
            "reachable": status.reachable,
            "checked_at": status.checked_at.isoformat(),
            "retired_models": status.retired_models,
        }
        if not status.reachable:
            entry["error"] = status.error_code
            entry["message"] = status.error_text  # Atelier's own sentence, never an exception's text
        if not status.reachable or status.retired_models:
            degraded.append(status.provider)
        providers[status.provider] = entry
    return {"ok": True, "providers": providers, "degraded": degraded}


CHECKS: dict[str, Check] = {
    "database": check_database,
    "broker": check_broker,
    "storage": check_storage,
    "worker": check_worker,
    "providers": check_providers,
}


def run_check(name: str, check: Check) -> dict:
    """One check's result; an exception is that check failing, with only its type shown."""
    started = time.monotonic()
    try:
        result = check()
    except Exception as error:
        logger.warning("readiness check %s failed: %s", name, type(error).__name__, exc_info=True)
        result = _failed(f"{name}: {type(error).__name__}")
    result["ms"] = round((time.monotonic() - started) * 1000, 1)
    return result


def run_checks() -> dict[str, dict]:
    return {name: run_check(name, check) for name, check in CHECKS.items()}


@login_not_required
@never_cache
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    """200 or 503. Each check's details only for a caller with READYZ_TOKEN (staff see them on
    the admin's operations overview): they describe the internals. Counted per client address
    (READYZ_RATE), since every call touches the database, the broker and (cached) the storage."""
    if exceeded := count_request(request, group="readyz", key="ip", rate=_readyz_rate, message=_probing_too_fast):
        response = JsonResponse({"status": "throttled", "retry_after": exceeded.retry_after}, status=429)
        response["Retry-After"] = str(exceeded.retry_after)
        return response
    checks = run_checks()
    ready = all(result["ok"] for result in checks.values())
    body: dict[str, object] = {"status": "ok" if ready else "unavailable"}
    if _may_see_details(request):
        body["checks"] = checks
    return JsonResponse(body, status=200 if ready else 503)


def _may_see_details(request: HttpRequest) -> bool:
    token = settings.READYZ_TOKEN
    sent = request.headers.get("Authorization", "")
    return bool(token) and hmac.compare_digest(sent.encode(), f"Bearer {token}".encode())


def _readyz_rate(group: str, request: HttpRequest) -> str:
    return settings.READYZ_RATE


def _probing_too_fast(seconds: int) -> str:
    return f"Too many readiness probes; try again in {seconds} s."


def healthz(request: HttpRequest) -> JsonResponse:
    """Alive: the process answers (no database, nothing else)."""
    return JsonResponse({"status": "ok"})


@login_not_required
def api_health(request: HttpRequest) -> JsonResponse:
    """Public liveness for API clients (no database access)."""
    return JsonResponse({"status": "ok", "version": settings.ATELIER_VERSION})


PROBES: dict[str, Callable[[HttpRequest], HttpResponse]] = {"/healthz": healthz, "/readyz": readyz}


class HealthMiddleware:
    """Answers the probes in PROBES first of all (see the module's docstring)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        probe = PROBES.get(request.path)
        return probe(request) if probe is not None else self.get_response(request)
