"""Limits on generating and on the API: a request rate per person, counted in the shared cache.

These functions only decide: each counts one request and answers None, or an Exceeded that
says how long to wait and why. Generating is counted only for tasks really made
(GenerationRate, checked and counted by services.create_task). The views render it: JSON for the API (generator.api.http),
the page with the message for pages (generator.views.errors). Sign-in limits live in
accounts.limits; the cap on waiting tasks is services.TooManyQueuedTasks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import ngettext
from django_ratelimit.core import get_usage

API_GROUP = "api"
GENERATE_GROUP = "generate"
PROMPT_HELPER_GROUP = "prompt_helper"
# How soon to try again after the cap on waiting tasks: tasks start within seconds.
QUEUED_CAP_RETRY_SECONDS = 5
# Why a 429 was sent, for clients that want to tell the limits apart (the `reason` field).
TOO_MANY_QUEUED_TASKS = "too_many_queued_tasks"
GENERATE_RATE = "generate_rate"
API_RATE = "api_rate"
QUOTA_EXCEEDED = "quota_exceeded"  # usage.quotas: a per-person quota
PROMPT_HELPER_RATE = "prompt_helper_rate"


@dataclass(frozen=True)
class Exceeded:
    """A limit this request went over: the API's error code, the message, the wait and which
    limit it was (`reason`). Every limit answers with the same code, rate_limit_exceeded."""

    code: str
    message: str
    retry_after: int
    reason: str = ""
    resets_at: datetime | None = None  # a quota's: when its period ends (the API says so)


def generate_rate(group: str, request: HttpRequest) -> str:
    return settings.GENERATE_RATE


def api_rate(group: str, request: HttpRequest) -> str:
    return settings.API_RATE


def prompt_helper_rate(group: str, request: HttpRequest) -> str:
    return settings.PROMPT_LLM_RATE


def usage(request: HttpRequest, group: str) -> dict:
    """How much of a per-person limit this person has used, without counting this request."""
    rate = {API_GROUP: api_rate, GENERATE_GROUP: generate_rate, PROMPT_HELPER_GROUP: prompt_helper_rate}[group]
    return get_usage(request, group=group, key="user", rate=rate, increment=False) or {}


def count_request(
    request: HttpRequest,
    *,
    group: str,
    key: str,
    rate: Callable[[str, HttpRequest], str],
    message: Callable[[int], str],
    reason: str = "",
) -> Exceeded | None:
    """Count this request in `group`; an Exceeded once it is over the rate (None: go ahead)."""
    counted = get_usage(request, group=group, key=key, rate=rate, increment=True)
    if counted is None or not counted["should_limit"]:
        return None
    retry_after = max(1, math.ceil(counted["time_left"]))
    return Exceeded(code="rate_limit_exceeded", message=message(retry_after), retry_after=retry_after, reason=reason)


class GenerationRate:
    """GENERATE_RATE for one submission: checked before a task is made, counted only once it
    is. services.create_task calls both under the owner's lock, so a person's concurrent
    submissions cannot slip past the rate together, and a refused one (invalid, over a limit,
    a replayed Idempotency-Key) leaves the count as it was."""

    def __init__(self, request: HttpRequest) -> None:
        self.request = request

    def check(self, tasks: int = 1) -> None:
        """Raise RateExceeded when these `tasks` would go past what is left of the window
        (a variant set asks for several at once)."""
        used = get_usage(self.request, group=GENERATE_GROUP, key="user", rate=generate_rate, increment=False)
        if used is None:
            return
        if used["should_limit"] or used["count"] + tasks > used["limit"]:
            retry_after = max(1, math.ceil(used["time_left"]))
            message = _generating_too_fast(retry_after)
            if tasks > 1 and used["count"] < used["limit"]:
                message = _set_too_large_for_rate(tasks, used["limit"] - used["count"], retry_after)
            raise RateExceeded(
                Exceeded(code="rate_limit_exceeded", message=message, retry_after=retry_after, reason=GENERATE_RATE)
            )

    def count(self, tasks: int = 1) -> None:
        """Count the tasks just made."""
        for _task in range(tasks):
            get_usage(self.request, group=GENERATE_GROUP, key="user", rate=generate_rate, increment=True)


class RateExceeded(Exception):
    """A submission over GENERATE_RATE (GenerationRate.check): carries what to render."""

    def __init__(self, exceeded: Exceeded) -> None:
        super().__init__(exceeded.message)
        self.exceeded = exceeded


def api_rate_exceeded(request: HttpRequest) -> Exceeded | None:
    """Count one API call for the signed-in person."""
    return count_request(
        request, group=API_GROUP, key="user", rate=api_rate, message=_calling_too_fast, reason=API_RATE
    )


def prompt_helper_rate_exceeded(request: HttpRequest) -> Exceeded | None:
    """Count one call of the prompt helper (PROMPT_LLM_RATE: each costs an LLM call) for the
    signed-in person."""
    return count_request(
        request,
        group=PROMPT_HELPER_GROUP,
        key="user",
        rate=prompt_helper_rate,
        message=_improving_too_fast,
        reason=PROMPT_HELPER_RATE,
    )


def _improving_too_fast(seconds: int) -> str:
    return ngettext(
        "You are asking the prompt helper faster than this server allows. Try again in %(seconds)s second.",
        "You are asking the prompt helper faster than this server allows. Try again in %(seconds)s seconds.",
        seconds,
    ) % {"seconds": seconds}


def _generating_too_fast(seconds: int) -> str:
    return ngettext(
        "You are generating faster than this server allows. Try again in %(seconds)s second.",
        "You are generating faster than this server allows. Try again in %(seconds)s seconds.",
        seconds,
    ) % {"seconds": seconds}


def _set_too_large_for_rate(tasks: int, left: int, seconds: int) -> str:
    return ngettext(
        "These %(tasks)s variants would go past how fast this server lets you generate: only %(left)s more task "
        "can start now. Choose fewer variants, or try again in %(seconds)s seconds.",
        "These %(tasks)s variants would go past how fast this server lets you generate: only %(left)s more tasks "
        "can start now. Choose fewer variants, or try again in %(seconds)s seconds.",
        left,
    ) % {"tasks": tasks, "left": left, "seconds": seconds}


def _calling_too_fast(seconds: int) -> str:
    return ngettext(
        "You are calling the API faster than this server allows. Try again in %(seconds)s second.",
        "You are calling the API faster than this server allows. Try again in %(seconds)s seconds.",
        seconds,
    ) % {"seconds": seconds}


def queued_cap_exceeded(error: Exception) -> Exceeded:
    """The cap on waiting tasks (services.TooManyQueuedTasks) as a limit to render."""
    return Exceeded(
        code="rate_limit_exceeded",
        message=str(error),
        retry_after=QUEUED_CAP_RETRY_SECONDS,
        reason=TOO_MANY_QUEUED_TASKS,
    )
