"""Sign-in limits: attempts per client address and per username, counted in the shared cache.

They only decide (generator.limits.count_request); accounts.views renders the 429.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import ngettext

from generator.limits import Exceeded, count_request

LOGIN_IP_GROUP = "login-ip"
LOGIN_USERNAME_GROUP = "login-username"


def login_rate_per_ip(group: str, request: HttpRequest) -> str:
    return settings.LOGIN_RATE_PER_IP


def login_rate_per_username(group: str, request: HttpRequest) -> str:
    return settings.LOGIN_RATE_PER_USERNAME


def _message(seconds: int) -> str:
    return ngettext(
        "Too many sign-in attempts. Try again in %(seconds)s second.",
        "Too many sign-in attempts. Try again in %(seconds)s seconds.",
        seconds,
    ) % {"seconds": seconds}


def sign_in_exceeded(request: HttpRequest) -> Exceeded | None:
    """Count one sign-in attempt, per address and then per username; the first limit it is over."""
    return count_request(
        request, group=LOGIN_IP_GROUP, key="ip", rate=login_rate_per_ip, message=_message
    ) or count_request(
        request, group=LOGIN_USERNAME_GROUP, key="post:username", rate=login_rate_per_username, message=_message
    )
