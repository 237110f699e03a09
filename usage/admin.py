"""Staff's side of usage: prices (with every known model's effective price), quotas, refusals,
and the read-only usage report per person, provider and model with its CSV export."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.admin import QuotaInline
from generator.models import Task

from . import prices, reports
from .models import ModelPrice, Quota, QuotaRefusal, UsageReport


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    """Overrides of the list prices (usage.prices.DEFAULT_PRICES). The list page also shows every
    model known here, priced or not, with the price that applies and where it comes from."""

    list_display = ("provider", "model", "price_per_image", "currency", "updated_at")
    list_filter = ("provider", "currency")
    search_fields = ("provider", "model")
    change_list_template = "admin/usage/modelprice/change_list.html"

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        return super().changelist_view(request, {**(extra_context or {}), "known_prices": known_prices()})


def known_prices() -> list[dict[str, Any]]:
    """Every model with a list price, an override or a task: its effective price (two queries)."""
    overrides = prices.overrides()
    used = set(Task.objects.order_by().values_list("provider", "model").distinct())
    keys = sorted(set(prices.DEFAULT_PRICES) | set(overrides) | used)
    rows = []
    for provider, model in keys:
        price = prices.price_for(provider, model)
        origin: str
        if (provider, model) in overrides:
            origin = str(_("set by staff"))
        elif price is not None:
            origin = price.source
        else:
            origin = str(_("no price: its tasks' cost stays empty and counts as 0 against spend quotas"))
        text = f"{price.amount.normalize():f} {price.currency}" if price is not None else "—"
        rows.append({"provider": provider, "model": model, "price": text, "origin": origin})
    return rows


@admin.register(Quota)
class QuotaAdmin(admin.ModelAdmin):
    """The same rows as the inlines on the User and Group pages, listed together."""

    list_display = ("__str__", "user", "group", "images_per_day", "images_per_month", "spend_per_month")
    list_select_related = ("user", "group")
    search_fields = ("user__username", "group__name")
    autocomplete_fields = ("user", "group")


@admin.register(QuotaRefusal)
class QuotaRefusalAdmin(admin.ModelAdmin):
    list_display = ("created_at", "owner", "kind")
    list_filter = ("kind", "created_at")
    list_select_related = ("owner",)
    search_fields = ("owner__username",)
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class GroupAdmin(DjangoGroupAdmin):
    inlines = (QuotaInline,)


if admin.site.is_registered(Group):
    admin.site.unregister(Group)
admin.site.register(Group, GroupAdmin)


@admin.register(UsageReport)
class UsageReportAdmin(admin.ModelAdmin):
    """Read-only: images and cost per person, provider or model over a period (?period=,
    ?by=), as a page or as CSV (?format=csv). Needs the "view usage report" permission."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(  # type: ignore[override]  # the CSV answer is streamed
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponseBase:
        if not self.has_view_permission(request):
            raise PermissionDenied
        period = request.GET.get("period", reports.Period.THIS_MONTH)
        if period not in dict(reports.Period.CHOICES):
            period = reports.Period.THIS_MONTH
        grouping = request.GET.get("by", "person")
        if grouping not in reports.GROUPINGS:
            grouping = "person"
        start, end = reports.Period.bounds(period)
        if request.GET.get("format") == "csv":
            return self._csv(grouping, period, start, end)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Usage"),
            "opts": self.model._meta,
            "periods": reports.Period.CHOICES,
            "period": period,
            "groupings": (("person", _("By person")), ("provider", _("By provider")), ("model", _("By model"))),
            "grouping": grouping,
            "start": start,
            "last_day": timezone.localtime(end - timedelta(seconds=1)),
            "rows": reports.report(grouping, start, end),
            "currency": settings.USAGE_CURRENCY,
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/usage/usage_report.html", context)

    def _csv(self, grouping: str, period: str, start: datetime, end: datetime) -> StreamingHttpResponse:
        rows = reports.report(grouping, start, end)
        response = StreamingHttpResponse(reports.csv_lines(grouping, rows), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="usage-{grouping}-{period}.csv"'
        return response
