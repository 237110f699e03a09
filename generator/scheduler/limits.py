"""Each provider's limits, from the environment: calls in flight, a rate, and a fallback.

Counted in the database, the scheduler's one source of truth, so every worker on every machine
sees the same numbers: in flight is the provider's tasks in `processing` (a worker's call or a
vendor job being watched), and the rate counts ProviderCall rows inside its window. Claims are
serialised (generator.scheduler.claim), so a count read in a claim cannot be overtaken.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count

from ..models import CLAIMABLE_STATUSES, ProviderCall, Task
from ..providers import enabled_providers

DEFAULT_CONCURRENCY = 4
# django-ratelimit's syntax: a count, then per [n] second/minute/hour/day ("10/m", "5/10s").
RATE_PATTERN = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\w*\s*$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class InvalidLimit(ValueError):
    """A <PROVIDER>_RATE or _FALLBACK value that cannot be read (generator.checks reports it)."""


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: float
    text: str

    @classmethod
    def parse(cls, text: str) -> Rate | None:
        """None for an empty value (no limit); InvalidLimit for one that is not a rate."""
        if not text.strip():
            return None
        match = RATE_PATTERN.match(text)
        if match is None or int(match[1]) < 1:
            raise InvalidLimit(f"{text!r} is not a rate like 10/m or 5/10s")
        return cls(count=int(match[1]), seconds=int(match[2] or 1) * UNIT_SECONDS[match[3]], text=text.strip())


@dataclass(frozen=True)
class Fallback:
    provider: str
    model: str

    @classmethod
    def parse(cls, text: str) -> Fallback | None:
        if not text.strip():
            return None
        provider, separator, model = text.strip().partition(":")
        if not separator or not provider or not model:
            raise InvalidLimit(f"{text!r} is not provider:model")
        return cls(provider=provider.strip(), model=model.strip())


@dataclass(frozen=True)
class ProviderLimit:
    name: str
    concurrency: int
    rate: Rate | None
    fallback: Fallback | None


def limit_for(name: str) -> ProviderLimit:
    """The provider's limits as configured (PROVIDER_LIMITS); unknown providers get the defaults."""
    values = getattr(settings, "PROVIDER_LIMITS", {}).get(name, {})
    return ProviderLimit(
        name=name,
        concurrency=max(1, int(values.get("CONCURRENCY") or DEFAULT_CONCURRENCY)),
        rate=Rate.parse(str(values.get("RATE") or "")),
        fallback=Fallback.parse(str(values.get("FALLBACK") or "")),
    )


def in_flight() -> dict[str, int]:
    """Tasks in `processing` per provider: calls being made and vendor jobs being watched."""
    rows = Task.objects.filter(status=Task.Status.PROCESSING).values("provider").annotate(n=Count("pk")).order_by()
    return {row["provider"]: row["n"] for row in rows}


def waiting() -> dict[str, int]:
    """Tasks waiting to be sent per provider (pending, or retrying after a transient error)."""
    rows = Task.objects.filter(status__in=CLAIMABLE_STATUSES).values("provider").annotate(n=Count("pk")).order_by()
    return {row["provider"]: row["n"] for row in rows}


def rate_wait(limit: ProviderLimit, now: datetime) -> float:
    """Seconds until the provider's rate allows one more call (0: it allows one now)."""
    if limit.rate is None:
        return 0.0
    window_start = now - timedelta(seconds=limit.rate.seconds)
    recent = ProviderCall.objects.filter(provider=limit.name, started_at__gt=window_start)
    if recent.count() < limit.rate.count:
        return 0.0
    # The call that must leave the window first: the count-th newest.
    oldest_counted = recent.order_by("-started_at").values_list("started_at", flat=True)[limit.rate.count - 1]
    return max(0.0, (oldest_counted - window_start).total_seconds())


def full_providers(providers: set[str], now: datetime) -> set[str]:
    """Of these providers, the ones that may not start a call now (concurrency or rate)."""
    flying = in_flight()
    full = set()
    for name in providers:
        limit = limit_for(name)
        if flying.get(name, 0) >= limit.concurrency or rate_wait(limit, now) > 0:
            full.add(name)
    return full


def record_call(provider: str, now: datetime) -> None:
    """Count one call against the provider's rate (inside the claim's transaction)."""
    if limit_for(provider).rate is not None:
        ProviderCall.objects.create(provider=provider, started_at=now)


def forget_calls_before(moment: datetime) -> int:
    return ProviderCall.objects.filter(started_at__lt=moment).delete()[0]


def longest_window_seconds() -> float:
    windows = [limit_for(name).rate for name in getattr(settings, "PROVIDER_LIMITS", {})]
    return max([rate.seconds for rate in windows if rate is not None], default=0.0)


def snapshot(now: datetime) -> list[dict]:
    """Every enabled provider's limits and load, for /api/v1/system/info and the admin."""
    flying, queued = in_flight(), waiting()
    rows = []
    for name in enabled_providers():
        limit = limit_for(name)
        rows.append(
            {
                "name": name,
                "concurrency": limit.concurrency,
                "rate": limit.rate.text if limit.rate else None,
                "fallback": f"{limit.fallback.provider}:{limit.fallback.model}" if limit.fallback else None,
                "in_flight": flying.get(name, 0),
                "queued": queued.get(name, 0),
                "rate_wait_seconds": round(rate_wait(limit, now), 1),
            }
        )
    return rows
