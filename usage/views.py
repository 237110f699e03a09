"""The Usage page: a person's own images and spend, their quotas, and the last 30 days."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.http import AuthenticatedHttpRequest

from . import quotas, reports


@require_GET
def usage_page(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Only the signed-in person's own tasks, in a fixed number of queries (three)."""
    standings, used = quotas.standings(request.user)
    chart = reports.last_days(request.user)
    context = {
        "standings": standings,
        "used": used,
        "unconverted": sorted(used.unconverted.items()),
        "chart": chart,
        "currency": settings.USAGE_CURRENCY,
    }
    return render(request, "usage/usage.html", context)
