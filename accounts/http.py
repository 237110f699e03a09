from __future__ import annotations

from django.contrib.auth.models import User
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class AuthenticatedHttpRequest(HttpRequest):
    """A request to a view behind sign-in (LoginRequiredMiddleware, or the API's own check)."""

    user: User
    htmx: HtmxDetails
