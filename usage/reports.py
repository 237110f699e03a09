"""Usage figures for people to read: a person's last 30 days by day and model (the Usage page),
and everyone's by person, provider or model over a period (the admin's report and its CSV).

Each figure is one grouped query over the tasks; the counting rules are usage.quotas'.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from generator.models import Task

from . import prices
from .quotas import COUNTED_STATUSES, Periods

if TYPE_CHECKING:
    from django.contrib.auth.models import User

CHART_DAYS = 30
# Colour-blind-safe (Okabe–Ito), then greys; more models than colours repeat them, the legend
# and the table still tell them apart.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000", "#999999")
# The chart's drawing area, in SVG user units (the SVG scales to the page's width).
CHART_WIDTH, CHART_HEIGHT = 720, 240
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 44, 8, 12, 28


# --- a person's last 30 days --------------------------------------------------------------


@dataclass
class Series:
    provider: str
    model: str
    color: str
    images: list[int]

    @property
    def label(self) -> str:
        return f"{self.model} ({self.provider})"

    @property
    def total(self) -> int:
        return sum(self.images)


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    color: str
    title: str


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass
class Chart:
    days: list[date]
    series: list[Series]
    today_images: int = 0
    bars: list[Bar] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    day_labels: list[Tick] = field(default_factory=list)  # y holds the x position here
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT
    plot_left: int = PLOT_LEFT
    plot_right: int = CHART_WIDTH - PLOT_RIGHT
    plot_bottom: int = CHART_HEIGHT - PLOT_BOTTOM

    @property
    def totals(self) -> list[int]:
        return [sum(series.images[index] for series in self.series) for index in range(len(self.days))]

    @property
    def rows(self) -> list[tuple[date, list[int], int]]:
        """The table under the chart: each day, its images per model and its total."""
        return [
            (day, [series.images[index] for series in self.series], total)
            for index, (day, total) in enumerate(zip(self.days, self.totals, strict=True))
        ]

    @property
    def total(self) -> int:
        return sum(self.totals)


def last_days(owner: User, now: datetime | None = None, days: int = CHART_DAYS) -> Chart:
    """The person's images asked for on each of the last `days` days (today included), by
    provider model; one query."""
    periods = Periods.at(now or timezone.now())
    first = periods.day_start.date() - timedelta(days=days - 1)
    start = timezone.make_aware(datetime.combine(first, datetime.min.time()), timezone.get_default_timezone())
    rows = (
        Task.objects.filter(
            owner=owner, created_at__gte=start, created_at__lt=periods.day_end, status__in=COUNTED_STATUSES
        )
        .annotate(day=TruncDate("created_at", tzinfo=timezone.get_default_timezone()))
        .order_by()
        .values("day", "provider", "model")
        .annotate(asked=Sum("num_images"))
    )
    all_days = [first + timedelta(days=offset) for offset in range(days)]
    index_of = {day: index for index, day in enumerate(all_days)}
    by_model: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        images = by_model.setdefault((row["provider"], row["model"]), [0] * days)
        if row["day"] in index_of:
            images[index_of[row["day"]]] += row["asked"] or 0
    ordered = sorted(by_model.items(), key=lambda item: (-sum(item[1]), item[0]))
    series = [
        Series(provider, model, PALETTE[index % len(PALETTE)], images)
        for index, ((provider, model), images) in enumerate(ordered)
    ]
    chart = Chart(days=all_days, series=series)
    chart.today_images = chart.totals[-1] if days else 0
    _draw(chart)
    return chart


def _draw(chart: Chart) -> None:
    """Stacked bars, a light grid with three labelled values, and a date under every fifth day."""
    top = _nice_max(max(chart.totals, default=0))
    plot_height = chart.plot_bottom - PLOT_TOP
    slot = (chart.plot_right - chart.plot_left) / max(len(chart.days), 1)
    bar_width = slot * 0.7
    for index, day in enumerate(chart.days):
        x = chart.plot_left + index * slot + (slot - bar_width) / 2
        base = float(chart.plot_bottom)
        for series in chart.series:
            images = series.images[index]
            if not images:
                continue
            height = plot_height * images / top
            base -= height
            title = f"{day.isoformat()}: {series.label}, {images}"
            chart.bars.append(
                Bar(round(x, 2), round(base, 2), round(bar_width, 2), round(height, 2), series.color, title)
            )
        if index % 5 == 0 or index == len(chart.days) - 1:
            chart.day_labels.append(Tick(round(x + bar_width / 2, 2), day.strftime("%m-%d")))
    for value in (0, top // 2, top):
        chart.ticks.append(Tick(round(chart.plot_bottom - plot_height * value / top, 2), str(value)))


def _nice_max(value: int) -> int:
    """The top of the scale: an even number at or over the highest bar (at least 2)."""
    top = max(value, 2)
    return top + top % 2


# --- everyone's, for staff ----------------------------------------------------------------


class Period:
    """The admin report's periods, in TIME_ZONE."""

    THIS_MONTH = "this_month"
    LAST_MONTH = "last_month"
    LAST_30_DAYS = "last_30_days"
    CHOICES = (
        (THIS_MONTH, _("This month")),
        (LAST_MONTH, _("Last month")),
        (LAST_30_DAYS, _("Last 30 days")),
    )

    @classmethod
    def bounds(cls, name: str, now: datetime | None = None) -> tuple[datetime, datetime]:
        periods = Periods.at(now or timezone.now())
        if name == cls.LAST_MONTH:
            last_day = periods.month_start - timedelta(days=1)
            return Periods.at(last_day).month_start, periods.month_start
        if name == cls.LAST_30_DAYS:
            start = Periods.at(periods.day_start - timedelta(days=CHART_DAYS - 1)).day_start
            return start, periods.day_end
        return periods.month_start, periods.month_end


GROUPINGS = {
    "person": ("owner__username",),
    "provider": ("provider",),
    "model": ("provider", "model"),
}


@dataclass
class ReportRow:
    key: tuple[str, ...]
    tasks: int = 0
    images: int = 0
    cost: Decimal = Decimal(0)
    unconverted: dict[str, Decimal] = field(default_factory=dict)

    @property
    def other_currencies(self) -> str:
        return ", ".join(f"{amount.normalize():f} {code}" for code, amount in sorted(self.unconverted.items()))


def report(grouping: str, start: datetime, end: datetime) -> list[ReportRow]:
    """Counted tasks created in [start, end) by person, provider or model: how many, the
    images asked for, and the recorded cost of the completed ones in USAGE_CURRENCY (one query)."""
    keys = GROUPINGS[grouping]
    rows = (
        counted_tasks(start, end)
        .order_by()
        .values(*keys, "cost_currency")
        .annotate(tasks=Count("pk"), asked=Sum("num_images"), cost=Sum("cost", filter=Q(status="completed")))
    )
    merged: dict[tuple[str, ...], ReportRow] = {}
    for row in rows:
        key = tuple(str(row[name]) for name in keys)
        line = merged.setdefault(key, ReportRow(key))
        line.tasks += row["tasks"]
        line.images += row["asked"] or 0
        if row["cost"] is not None:
            converted = prices.in_reporting_currency(row["cost"], row["cost_currency"])
            if converted is None:
                line.unconverted[row["cost_currency"]] = line.unconverted.get(row["cost_currency"], 0) + row["cost"]
            else:
                line.cost += converted
    return sorted(merged.values(), key=lambda line: (-line.images, line.key))


def counted_tasks(start: datetime, end: datetime) -> QuerySet[Task]:
    return Task.objects.filter(created_at__gte=start, created_at__lt=end, status__in=COUNTED_STATUSES)


# --- CSV ----------------------------------------------------------------------------------

# A cell starting with one of these is a formula to a spreadsheet (CSV injection): prefix it
# with an apostrophe, which spreadsheets show as text and do not evaluate.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class _Echo:
    """A file-like object whose write returns the line, for streaming csv.writer's output."""

    def write(self, value: str) -> str:
        return value


def csv_lines(grouping: str, rows: Iterable[ReportRow]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    headers = {"person": ["person"], "provider": ["provider"], "model": ["provider", "model"]}[grouping]
    yield writer.writerow(
        [*headers, "tasks", "images", f"cost_{settings.USAGE_CURRENCY.lower()}", "cost_other_currencies"]
    )
    for row in rows:
        cells: list[object] = [*row.key, row.tasks, row.images, f"{row.cost:.4f}", row.other_currencies]
        yield writer.writerow([safe_cell(cell) for cell in cells])
