"""Per-person quotas: images per day, images per month, spend per month.

services.create_task (and create_variant_set, for a whole set) calls check_all() under the owner's lock, so concurrent submissions cannot
slip past a quota together. A refusal raises QuotaExceeded before anything is sent; the caller
(services.create_task_once) records it as a QuotaRefusal once the transaction is rolled back.

What counts (README "Quotas and spend"): the images asked for by the person's tasks created in
the period that are waiting, running or completed; failed and canceled tasks give their share
back, deleting images later does not. Spend is the recorded cost of completed tasks plus the
expected cost (price x images) of the ones still running, in USAGE_CURRENCY.

Which limit applies, for each of the three on its own: the person's Quota row when it sets it;
else the most generous of their groups' rows that set it; else the QUOTA_* setting.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.models import Q, Sum
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from generator.limits import QUOTA_EXCEEDED, Exceeded, RateExceeded
from generator.models import ACTIVE_STATUSES, Task

from . import prices
from .models import Quota, QuotaRefusal

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from generator.services import TaskSettings

# The statuses whose images count: waiting, running (or retrying) and completed.
COUNTED_STATUSES = (*ACTIVE_STATUSES, Task.Status.COMPLETED)
Kind = QuotaRefusal.Kind


class QuotaExceeded(RateExceeded):
    """A submission over a quota: what to render (reason "quota_exceeded"), which quota and
    when it resets.

    A kind of RateExceeded, so every page and endpoint that answers a limit with a 429 answers
    this one too; the APIs catch it first to add `resets_at` (and the gateway to say
    insufficient_quota)."""

    def __init__(self, exceeded: Exceeded, kind: str, resets_at: datetime) -> None:
        super().__init__(exceeded)
        self.kind = kind
        self.resets_at = resets_at


# --- periods ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Periods:
    """Today and this month in TIME_ZONE, as [start, end) in aware datetimes."""

    now: datetime
    day_start: datetime
    day_end: datetime
    month_start: datetime
    month_end: datetime

    @classmethod
    def at(cls, now: datetime) -> Periods:
        zone = timezone.get_default_timezone()  # the server's TIME_ZONE, whoever is asking
        local = timezone.localtime(now, zone)
        today = local.date()
        first = today.replace(day=1)
        next_first = (first + timedelta(days=32)).replace(day=1)

        def midnight(day: object) -> datetime:
            # Midnight local time, placed by the zone itself (DST days are 23 or 25 hours long).
            return timezone.make_aware(datetime.combine(day, datetime.min.time()), zone)  # type: ignore[arg-type]

        return cls(
            now=now,
            day_start=midnight(today),
            day_end=midnight(today + timedelta(days=1)),
            month_start=midnight(first),
            month_end=midnight(next_first),
        )

    def resets_at(self, kind: str) -> datetime:
        return self.day_end if kind == Kind.IMAGES_PER_DAY else self.month_end


# --- limits -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """The limits that apply to one person; None = unlimited."""

    images_per_day: int | None
    images_per_month: int | None
    spend_per_month: Decimal | None

    def of(self, kind: str) -> int | Decimal | None:
        return getattr(self, kind)


LIMIT_FIELDS: tuple[str, ...] = ("images_per_day", "images_per_month", "spend_per_month")  # Kind's values


def limits_for(owner: User) -> Limits:
    """The person's own Quota, else the most generous of their groups', else the settings; each
    limit on its own (one query)."""
    rows = list(Quota.objects.filter(Q(user=owner) | Q(group__user=owner)).distinct())
    personal = next((row for row in rows if row.user_id == owner.pk), None)
    groups = [row for row in rows if row.group_id is not None]
    defaults: dict[str, int | Decimal | None] = {
        Kind.IMAGES_PER_DAY: settings.QUOTA_IMAGES_PER_DAY,
        Kind.IMAGES_PER_MONTH: settings.QUOTA_IMAGES_PER_MONTH,
        Kind.SPEND_PER_MONTH: settings.QUOTA_SPEND_PER_MONTH,
    }
    chosen: dict[str, Any] = {}
    for kind in LIMIT_FIELDS:
        own = getattr(personal, kind) if personal is not None else None
        set_by_groups = [getattr(row, kind) for row in groups if getattr(row, kind) is not None]
        if own is not None:
            chosen[kind] = own
        elif set_by_groups:
            chosen[kind] = max(set_by_groups)
        else:
            chosen[kind] = defaults[kind]
    return Limits(**chosen)


# --- what was used ------------------------------------------------------------------------


@dataclass
class Used:
    """What a person used today and this month. Spend is in USAGE_CURRENCY; costs in a
    currency without an exchange rate are kept apart in `unconverted` and not counted."""

    images_today: int = 0
    images_month: int = 0
    spend_month: Decimal = Decimal(0)
    unconverted: dict[str, Decimal] = field(default_factory=dict)

    def of(self, kind: str) -> int | Decimal:
        values: dict[str, int | Decimal] = {
            Kind.IMAGES_PER_DAY: self.images_today,
            Kind.IMAGES_PER_MONTH: self.images_month,
            Kind.SPEND_PER_MONTH: self.spend_month,
        }
        return values[kind]

    def add_cost(self, amount: Decimal, currency: str) -> None:
        converted = prices.in_reporting_currency(amount, currency)
        if converted is None:
            self.unconverted[currency] = self.unconverted.get(currency, Decimal(0)) + amount
        else:
            self.spend_month += converted


def used_by(owner: User, periods: Periods) -> Used:
    """One grouped query over the month's counted tasks (index task_owner_created)."""
    month = Task.objects.filter(
        owner=owner,
        created_at__gte=periods.month_start,
        created_at__lt=periods.month_end,
        status__in=COUNTED_STATUSES,
    )
    rows = (
        month.order_by()
        .values("provider", "model", "cost_currency")
        .annotate(
            today=Sum("num_images", filter=Q(created_at__gte=periods.day_start, created_at__lt=periods.day_end)),
            asked=Sum("num_images"),
            cost=Sum("cost", filter=Q(status=Task.Status.COMPLETED)),
            running=Sum("num_images", filter=Q(status__in=ACTIVE_STATUSES)),
        )
    )
    used = Used()
    for row in rows:
        used.images_today += row["today"] or 0
        used.images_month += row["asked"] or 0
        if row["cost"] is not None:
            used.add_cost(row["cost"], row["cost_currency"])
        if row["running"]:
            expected = expected_cost(row["provider"], row["model"], row["running"])
            if expected is not None:
                used.add_cost(*expected)
    return used


def expected_cost(provider: str, model: str, images: int) -> tuple[Decimal, str] | None:
    price = prices.price_for(provider, model)
    return None if price is None else (price.amount * images, price.currency)


# --- the check ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Standing:
    """One quota as the Usage page and system/info show it."""

    kind: str
    used: int | Decimal
    limit: int | Decimal | None
    resets_at: datetime

    @property
    def label(self) -> str:
        return str(Kind(self.kind).label)

    @property
    def is_spend(self) -> bool:
        return self.kind == Kind.SPEND_PER_MONTH

    @property
    def remaining(self) -> int | Decimal | None:
        return None if self.limit is None else max(self.limit - self.used, 0)

    @property
    def percent(self) -> int:
        if not self.limit:
            return 100 if self.limit == 0 else 0
        return min(100, int(self.used * 100 / self.limit))


def standings(owner: User, now: datetime | None = None) -> tuple[list[Standing], Used]:
    periods = Periods.at(now or timezone.now())
    limits = limits_for(owner)
    used = used_by(owner, periods)
    return [Standing(kind, used.of(kind), limits.of(kind), periods.resets_at(kind)) for kind in LIMIT_FIELDS], used


def check_all(owner: User, wanted: Sequence[TaskSettings]) -> None:
    """Raise QuotaExceeded when these tasks together (a variant set: one submission) would take
    the owner past a quota."""
    limits = limits_for(owner)
    if all(limits.of(kind) is None for kind in LIMIT_FIELDS):
        return  # nothing to count
    periods = Periods.at(timezone.now())
    used = used_by(owner, periods)
    images = sum(task_settings.num_images for task_settings in wanted)
    spend = Decimal(0)
    for task_settings in wanted:
        cost = expected_cost(task_settings.provider, task_settings.model, task_settings.num_images)
        converted = prices.in_reporting_currency(*cost) if cost is not None else None
        spend += converted or Decimal(0)
    asked: dict[str, int | Decimal] = {
        Kind.IMAGES_PER_DAY: images,
        Kind.IMAGES_PER_MONTH: images,
        Kind.SPEND_PER_MONTH: spend,
    }
    for kind in LIMIT_FIELDS:
        limit = limits.of(kind)
        if limit is None:
            continue
        if kind == Kind.SPEND_PER_MONTH and asked[kind] == 0:
            continue  # a free (or unpriced) picture spends nothing, whatever was spent before
        if used.of(kind) + asked[kind] > limit:
            raise refusal(kind, limit, periods)


def refusal(kind: str, limit: int | Decimal, periods: Periods) -> QuotaExceeded:
    resets_at = periods.resets_at(kind)
    retry_after = max(1, math.ceil((resets_at - periods.now).total_seconds()))
    exceeded = Exceeded(
        code="rate_limit_exceeded",
        message=message(kind, limit, resets_at),
        retry_after=retry_after,
        reason=QUOTA_EXCEEDED,
        resets_at=resets_at,
    )
    return QuotaExceeded(exceeded, kind, resets_at)


def message(kind: str, limit: int | Decimal, resets_at: datetime) -> str:
    """Which quota and when it resets, in the active language (the person's own on a page)."""
    when = formats.date_format(timezone.localtime(resets_at, timezone.get_default_timezone()), "DATETIME_FORMAT")
    values = {"limit": limit, "when": when, "currency": settings.USAGE_CURRENCY}
    if kind == Kind.IMAGES_PER_DAY:
        text = ngettext(
            "This would go past your quota of %(limit)s image per day. It resets on %(when)s.",
            "This would go past your quota of %(limit)s images per day. It resets on %(when)s.",
            int(limit),
        )
    elif kind == Kind.IMAGES_PER_MONTH:
        text = ngettext(
            "This would go past your quota of %(limit)s image per month. It resets on %(when)s.",
            "This would go past your quota of %(limit)s images per month. It resets on %(when)s.",
            int(limit),
        )
    else:
        text = _("This would go past your spending quota of %(limit)s %(currency)s per month. It resets on %(when)s.")
    return text % values


def record_refusal(owner: User, refused: QuotaExceeded) -> None:
    """Keep the refusal (for /metrics and the admin); called after the refused transaction."""
    QuotaRefusal.objects.create(owner=owner, kind=refused.kind)
