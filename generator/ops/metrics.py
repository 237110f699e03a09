"""GET /metrics: Atelier's figures in the Prometheus text format, for staff and metrics tokens.

Every figure is read from the database when Prometheus scrapes, so the answer is the same
whichever web process serves it and counts what every worker did (no per-process counters,
no multiprocess directory). Each metric family costs at most one grouped query, whatever the
number of tasks; the answer is kept METRICS_CACHE_SECONDS (shared cache) so several scrapers,
or one scraping too often, cannot load the database.

The counters (`*_total`) are counts of rows: they drop when people delete their history or
staff prune it, and Prometheus reads a drop as a counter reset (rate() and increase() carry on
from the new value, which is what they should do).

Who may read it: a signed-in staff session, or a bearer token holding the metrics scope whose
owner is still active staff. Anonymous is a 401 (answered before any query: a session-less
request touches nothing), a person or token without the right a 403. Scrapes are not counted
against API_RATE: a metrics token is not an API token, and the cache bounds what a scrape costs.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.db import DatabaseError
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from accounts.models import ApiToken, Scope
from accounts.tokens import bearer_credentials, bearer_token
from usage.models import QuotaRefusal

from ..models import Image, Task
from ..providers import enabled_providers
from ..scheduler.limits import in_flight, waiting

logger = logging.getLogger(__name__)

# Upper bounds (seconds) of the generation-time histogram: an offline sketch takes well under
# one, a hosted model a few to tens, a queued vendor job minutes.
DURATION_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600)
# A token counts as in use if it was used within this long (last_used_at is kept to the minute).
TOKEN_RECENT_USE = timedelta(days=1)
CACHE_KEY = "atelier:metrics"
# A failed task without a code (none should have one) is labelled so rather than with "".
NO_ERROR_CODE = "unknown"


class DatabaseCollector(Collector):
    """The atelier_* families, collected from the database at each scrape."""

    def collect(self) -> Iterator[Metric]:
        providers = list(enabled_providers())
        yield from task_families(providers)
        yield failures_family()
        yield duration_family(providers)
        yield per_provider_gauge(
            "atelier_queue_length",
            "Tasks waiting to be sent to their provider (pending, or retrying after a transient error).",
            waiting(),
            providers,
        )
        yield per_provider_gauge(
            "atelier_tasks_in_flight",
            "Tasks generating now (a provider call, or a vendor job being watched): what the "
            "provider's concurrency limit counts.",
            in_flight(),
            providers,
        )
        yield from image_families()
        yield spend_family()
        yield refusals_family()
        yield from token_families()


def _with_known(providers: Iterable[str], seen: Iterable[str]) -> list[str]:
    """Enabled providers (so their series exist at 0) and any other a task names, sorted."""
    return sorted(set(providers) | set(seen))


def task_families(providers: list[str]) -> Iterator[Metric]:
    """Tasks by status, by source, completions and retries: one query grouped by provider,
    status and source."""
    rows = list(
        Task.objects.values("provider", "status", "source")
        .annotate(n=Count("pk"), retries=Sum(F("attempts") - 1, filter=Q(attempts__gt=1)))
        .order_by()
    )
    by_status: dict[tuple[str, str], int] = defaultdict(int)
    by_source: dict[str, int] = defaultdict(int)
    retries: dict[str, int] = defaultdict(int)
    for row in rows:
        by_status[row["provider"], row["status"]] += row["n"]
        by_source[row["source"]] += row["n"]
        retries[row["provider"]] += row["retries"] or 0
    names = _with_known(providers, (row["provider"] for row in rows))

    tasks = GaugeMetricFamily(
        "atelier_tasks", "Tasks in the database by provider and status.", labels=["provider", "status"]
    )
    completed = CounterMetricFamily(
        "atelier_tasks_completed", "Tasks that completed, by provider.", labels=["provider"]
    )
    retried = CounterMetricFamily(
        "atelier_task_retries",
        "Sends to a provider beyond each task's first (transient errors tried again), by provider.",
        labels=["provider"],
    )
    for name in names:
        for status in Task.Status.values:
            tasks.add_metric([name, status], by_status[name, status])
        completed.add_metric([name], by_status[name, Task.Status.COMPLETED])
        retried.add_metric([name], retries[name])
    created = CounterMetricFamily(
        "atelier_tasks_created",
        "Tasks submitted, by where they came from (web: the pages, api: /api/v1, openai: the OpenAI-compatible /v1).",
        labels=["source"],
    )
    for source in sorted(set(Task.Source.values) | set(by_source)):
        created.add_metric([source], by_source[source])
    yield from (tasks, completed, retried, created)


def failures_family() -> Metric:
    rows = (
        Task.objects.filter(status=Task.Status.FAILED)
        .values("provider", "error_code")
        .annotate(n=Count("pk"))
        .order_by("provider", "error_code")
    )
    family = CounterMetricFamily(
        "atelier_tasks_failed", "Tasks that failed, by provider and error code.", labels=["provider", "error_code"]
    )
    for row in rows:
        family.add_metric([row["provider"], row["error_code"] or NO_ERROR_CODE], row["n"])
    return family


def duration_family(providers: list[str]) -> Metric:
    """Completed tasks' finished_at - started_at (first start to the end, so retries' waits
    count), in fixed buckets: one query, one conditional count per bucket."""
    took = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    buckets = {
        f"le_{index}": Count("pk", filter=Q(took__lte=timedelta(seconds=bound)))
        for index, bound in enumerate(DURATION_BUCKETS)
    }
    rows = {
        row["provider"]: row
        for row in Task.objects.filter(
            status=Task.Status.COMPLETED, started_at__isnull=False, finished_at__isnull=False
        )
        .alias(took=took)
        .values("provider")
        .annotate(n=Count("pk"), total=Sum("took"), **buckets)
        .order_by()
    }
    family = HistogramMetricFamily(
        "atelier_generation_duration_seconds",
        "Seconds from a task's first start to its completion, by provider (completed tasks).",
        labels=["provider"],
    )
    for name in _with_known(providers, rows):
        row = rows.get(name, {})
        counts = [(str(float(bound)), row.get(f"le_{index}", 0)) for index, bound in enumerate(DURATION_BUCKETS)]
        total = row.get("total") or timedelta(0)
        family.add_metric([name], [*counts, ("+Inf", row.get("n", 0))], sum_value=total.total_seconds())
    return family


def per_provider_gauge(name: str, documentation: str, counts: dict[str, int], providers: list[str]) -> Metric:
    family = GaugeMetricFamily(name, documentation, labels=["provider"])
    for provider in _with_known(providers, counts):
        family.add_metric([provider], counts.get(provider, 0))
    return family


def image_families() -> Iterator[Metric]:
    stored = Image.objects.aggregate(n=Count("pk"), size=Sum("bytes"))
    yield GaugeMetricFamily("atelier_images_stored", "Images kept (originals; each also has a thumbnail).", stored["n"])
    yield GaugeMetricFamily(
        "atelier_images_stored_bytes",
        "Bytes of the original images kept (thumbnails not counted).",
        stored["size"] or 0,
    )


def spend_family() -> Metric:
    rows = (
        Task.objects.filter(cost__isnull=False)
        .values("provider", "model", "cost_currency")
        .annotate(total=Sum("cost"))
        .order_by("provider", "model", "cost_currency")
    )
    family = CounterMetricFamily(
        "atelier_spend",
        "What completed tasks cost at the provider's price, by provider, model and currency.",
        labels=["provider", "model", "currency"],
    )
    for row in rows:
        family.add_metric([row["provider"], row["model"], row["cost_currency"]], float(row["total"]))
    return family


def refusals_family() -> Metric:
    counts = dict(QuotaRefusal.objects.values_list("kind").annotate(n=Count("pk")).order_by())
    family = CounterMetricFamily(
        "atelier_quota_refusals", "Submissions refused over a quota, by quota.", labels=["kind"]
    )
    for kind in sorted(set(QuotaRefusal.Kind.values) | set(counts)):
        family.add_metric([kind], counts.get(kind, 0))
    return family


def token_families() -> Iterator[Metric]:
    """Working tokens (not revoked, not expired, their owner active) by scope, and how many of
    them were used lately: one query grouped by the tokens' scope lists."""
    now = timezone.now()
    rows = (
        ApiToken.objects.filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now), revoked_at__isnull=True, owner__is_active=True
        )
        .values("scopes")
        .annotate(n=Count("pk"), recent=Count("pk", filter=Q(last_used_at__gte=now - TOKEN_RECENT_USE)))
        .order_by()
    )
    working: dict[str, int] = defaultdict(int)
    recent: dict[str, int] = defaultdict(int)
    for row in rows:
        for scope in row["scopes"] if isinstance(row["scopes"], list) else []:
            working[scope] += row["n"]
            recent[scope] += row["recent"]
    tokens = GaugeMetricFamily("atelier_api_tokens", "Personal tokens that work, by scope.", labels=["scope"])
    used = GaugeMetricFamily(
        "atelier_api_tokens_used_recently", "Working tokens used in the last 24 hours, by scope.", labels=["scope"]
    )
    for scope in Scope.values:
        tokens.add_metric([scope], working[scope])
        used.add_metric([scope], recent[scope])
    yield from (tokens, used)


registry = CollectorRegistry(auto_describe=False)
registry.register(DatabaseCollector())


def exposition() -> bytes:
    """The text Prometheus reads, from the cache while it is fresh (METRICS_CACHE_SECONDS)."""
    seconds = settings.METRICS_CACHE_SECONDS
    if seconds <= 0:
        return generate_latest(registry)
    try:
        cached = cache.get(CACHE_KEY)
    except Exception:  # a cache outage must not stop the metrics (which would show it)
        logger.warning("metrics: the cache could not be read", exc_info=True)
        cached = None
    if isinstance(cached, bytes):
        return cached
    text = generate_latest(registry)
    try:
        cache.set(CACHE_KEY, text, timeout=seconds)
    except Exception:
        logger.warning("metrics: the cache could not be written", exc_info=True)
    return text


# --- the view ---------------------------------------------------------------------------------


def _plain(status: int, text: str) -> HttpResponse:
    response = HttpResponse(text + "\n", status=status, content_type="text/plain; charset=utf-8")
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


def refusal(request: HttpRequest) -> HttpResponse | None:
    """401 or 403 for a request that may not read the metrics; None for one that may."""
    if bearer_credentials(request) is not None:
        # A bearer header decides alone, never the session beside it.
        token = bearer_token(request)
        if token is None:
            return _plain(401, _("The token is malformed, unknown, expired or revoked."))
        if not token.has_scope(Scope.METRICS):
            return _plain(403, _("This token cannot read /metrics: make a metrics token on the account page."))
        if not token.owner.is_staff:
            return _plain(403, _("This token's owner is no longer staff: only staff may read /metrics."))
        return None
    if not request.user.is_authenticated:
        return _plain(401, _("Sign in as staff, or send a metrics token as Authorization: Bearer <token>."))
    if not request.user.is_staff:
        return _plain(403, _("Only staff may read /metrics."))
    return None


@never_cache
@login_not_required  # it answers 401 itself: a scraper must not be redirected to the sign-in page
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    refused = refusal(request)
    if refused is not None:
        return refused
    try:
        text = exposition()
    except DatabaseError:
        # Prometheus records the failed scrape (up == 0); the reason is for the log, not the body.
        logger.exception("metrics: the database could not be read")
        return _plain(503, _("The metrics could not be read from the database; try again shortly."))
    return HttpResponse(text, content_type=CONTENT_TYPE_PLAIN_0_0_4)
