"""Limits on generating: a request rate per person and a cap on active tasks.

Both answer HTTP 429 with Retry-After: JSON for the API, a message in place for htmx, the
page with the message otherwise. Polling and plain pages are never limited.
"""

from __future__ import annotations

import math

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import ngettext
from django_htmx.http import reswap, retarget
from django_ratelimit.core import get_usage
from django_ratelimit.decorators import ratelimit

API_GROUP = "api"
GENERATE_GROUP = "generate"
LOGIN_IP_GROUP = "login-ip"
LOGIN_USERNAME_GROUP = "login-username"
ACTIVE_CAP_RETRY_SECONDS = 5


def generate_rate(group: str, request: HttpRequest) -> str:
    return settings.GENERATE_RATE


def api_rate(group: str, request: HttpRequest) -> str:
    return settings.API_RATE


def login_rate_per_ip(group: str, request: HttpRequest) -> str:
    return settings.LOGIN_RATE_PER_IP


def login_rate_per_username(group: str, request: HttpRequest) -> str:
    return settings.LOGIN_RATE_PER_USERNAME


# Counted per signed-in person; only POSTs (submissions) count.
limit_generate = ratelimit(group=GENERATE_GROUP, key="user", rate=generate_rate, method="POST")
limit_login_per_ip = ratelimit(group=LOGIN_IP_GROUP, key="ip", rate=login_rate_per_ip, method="POST")
limit_login_per_username = ratelimit(
    group=LOGIN_USERNAME_GROUP, key="post:username", rate=login_rate_per_username, method="POST"
)

USAGE_BY_GROUP = {
    API_GROUP: ("user", api_rate),
    GENERATE_GROUP: ("user", generate_rate),
    LOGIN_IP_GROUP: ("ip", login_rate_per_ip),
    LOGIN_USERNAME_GROUP: ("post:username", login_rate_per_username),
}


class ActiveTaskLimitReached(Exception):
    """The person already has MAX_ACTIVE_TASKS_PER_USER tasks pending or running."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(limit)

    def __str__(self) -> str:
        """The message for the person, in the active language (read when the answer is made)."""
        return ngettext(
            "You already have %(count)s task waiting or generating. "
            "Wait for one to finish, or cancel one, then try again.",
            "You already have %(count)s tasks waiting or generating. "
            "Wait for one to finish, or cancel one, then try again.",
            self.limit,
        ) % {"count": self.limit}


def _seconds_until_allowed(request: HttpRequest, groups: tuple[str, ...]) -> int:
    """The longest wait among the limits this request has exceeded."""
    waits = [1]
    for group in groups:
        key, rate = USAGE_BY_GROUP[group]
        usage = get_usage(request, group=group, key=key, rate=rate, method="POST", increment=False)
        if usage and usage["should_limit"]:
            waits.append(math.ceil(usage["time_left"]))
    return max(waits)


def too_many_requests(request: HttpRequest, *, code: str, message: str, retry_after: int) -> HttpResponse:
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse(
            {"error": code, "message": message, "retry_after": retry_after}, status=429
        )
    elif request.path.startswith("/accounts/login"):
        from django.contrib.auth.forms import AuthenticationForm

        context = {"form": AuthenticationForm(request), "limit_message": message}
        response = render(request, "registration/login.html", context, status=429)
    elif request.htmx:
        # The htmx config in base.html swaps 429 answers: the message lands above the form.
        response = render(request, "generator/_form_problem.html", {"message": message}, status=429)
        response = reswap(retarget(response, "#form-problem"), "outerHTML")
    else:
        from .views.create import create_page_context

        context = {**create_page_context(request), "limit_message": message}
        response = render(request, "generator/create.html", context, status=429)
    response["Retry-After"] = str(retry_after)
    return response


def rate_limited(request: HttpRequest, exception: Exception) -> HttpResponse:
    """RATELIMIT_VIEW: what a request over a django-ratelimit limit gets."""
    if request.path.startswith("/accounts/login"):
        retry_after = _seconds_until_allowed(request, (LOGIN_IP_GROUP, LOGIN_USERNAME_GROUP))
        message = ngettext(
            "Too many sign-in attempts. Try again in %(seconds)s second.",
            "Too many sign-in attempts. Try again in %(seconds)s seconds.",
            retry_after,
        ) % {"seconds": retry_after}
    else:
        retry_after = _seconds_until_allowed(request, (GENERATE_GROUP,))
        message = ngettext(
            "You are generating faster than this server allows. Try again in %(seconds)s second.",
            "You are generating faster than this server allows. Try again in %(seconds)s seconds.",
            retry_after,
        ) % {"seconds": retry_after}
    return too_many_requests(request, code="rate_limit_exceeded", message=message, retry_after=retry_after)


def api_rate_exceeded(request: HttpRequest) -> HttpResponse | None:
    """Count one API call for the signed-in person; the 429 once they are over API_RATE."""
    usage = get_usage(request, group=API_GROUP, key="user", rate=api_rate, increment=True)
    if usage is None or not usage["should_limit"]:
        return None
    retry_after = max(1, math.ceil(usage["time_left"]))
    message = ngettext(
        "You are calling the API faster than this server allows. Try again in %(seconds)s second.",
        "You are calling the API faster than this server allows. Try again in %(seconds)s seconds.",
        retry_after,
    ) % {"seconds": retry_after}
    return too_many_requests(request, code="rate_limit_exceeded", message=message, retry_after=retry_after)


def active_cap_reached(request: HttpRequest, error: ActiveTaskLimitReached) -> HttpResponse:
    return too_many_requests(
        request, code="too_many_active_tasks", message=str(error), retry_after=ACTIVE_CAP_RETRY_SECONDS
    )
