"""Sign-in and sign-up limits, counted in the shared cache.

Sign-in (the site's page and the admin's, one set of counters) counts, in this order:
- per client address (accounts.addresses: behind a trusted proxy, the forwarded client);
- per username *and* address: a stranger who guesses carol's password from one address locks
  only that pair, not carol, who signs in from elsewhere;
- per username, with a higher ceiling: many addresses guessing one password are still stopped.
The first limit a request is over stops the count, so requests refused for the pair do not
also fill the username's ceiling: one address cannot lock a person out on its own.

The username is counted the way AuthenticationForm cleans it (stripped, NFKC) and case-folded,
so " carol", "ｃａｒｏｌ" and "Carol" share carol's counters. Django usernames are case-sensitive,
so a real "Carol" shares them too; a shared counter errs on the strict side.

They only decide (generator.limits.count_request); accounts.views renders the 429.
"""

from __future__ import annotations

import math
import unicodedata

from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import ngettext

from generator.limits import Exceeded, count_request

from .addresses import client_address

LOGIN_IP_GROUP = "login-ip"
LOGIN_USERNAME_IP_GROUP = "login-username-ip"
LOGIN_USERNAME_GROUP = "login-username"
SIGNUP_IP_GROUP = "signup-ip"
# django-ratelimit imports a key given as a dotted path (count_request takes key strings).
USERNAME_KEY = "accounts.limits.login_username"
USERNAME_AND_IP_KEY = "accounts.limits.login_username_and_ip"


def login_rate_per_ip(group: str, request: HttpRequest) -> str:
    return settings.LOGIN_RATE_PER_IP


def login_rate_per_username_and_ip(group: str, request: HttpRequest) -> str:
    return settings.LOGIN_RATE_PER_USERNAME_AND_IP


def login_rate_per_username(group: str, request: HttpRequest) -> str:
    return settings.LOGIN_RATE_PER_USERNAME


def signup_rate_per_ip(group: str, request: HttpRequest) -> str:
    return settings.SIGNUP_RATE_PER_IP


def normalize_username(username: str) -> str:
    """The username as the sign-in form cleans it (strip, NFKC), then case-folded."""
    return unicodedata.normalize("NFKC", username.strip()).strip().casefold()


def login_username(group: str, request: HttpRequest) -> str:
    return normalize_username(request.POST.get("username", ""))


def login_username_and_ip(group: str, request: HttpRequest) -> str:
    # A NUL cannot be in a username that gets this far, so the pair is unambiguous.
    return f"{login_username(group, request)}\x00{client_address(request)}"


def _signing_in_too_often(seconds: int) -> str:
    return ngettext(
        "Too many sign-in attempts. Try again in %(seconds)s second.",
        "Too many sign-in attempts. Try again in %(seconds)s seconds.",
        seconds,
    ) % {"seconds": seconds}


def _signing_up_too_often(seconds: int) -> str:
    # Sign-up windows are long (an hour by default): minutes read better than 3,412 seconds.
    minutes = max(1, math.ceil(seconds / 60))
    return ngettext(
        "Too many sign-ups from your network address. Try again in %(minutes)s minute.",
        "Too many sign-ups from your network address. Try again in %(minutes)s minutes.",
        minutes,
    ) % {"minutes": minutes}


def sign_in_exceeded(request: HttpRequest) -> Exceeded | None:
    """Count one sign-in attempt (address, username and address, username); the first limit it is over."""
    return (
        count_request(request, group=LOGIN_IP_GROUP, key="ip", rate=login_rate_per_ip, message=_signing_in_too_often)
        or count_request(
            request,
            group=LOGIN_USERNAME_IP_GROUP,
            key=USERNAME_AND_IP_KEY,
            rate=login_rate_per_username_and_ip,
            message=_signing_in_too_often,
        )
        or count_request(
            request,
            group=LOGIN_USERNAME_GROUP,
            key=USERNAME_KEY,
            rate=login_rate_per_username,
            message=_signing_in_too_often,
        )
    )


def sign_up_exceeded(request: HttpRequest) -> Exceeded | None:
    """Count one sign-up submission per client address (valid or not: each may cost a hash)."""
    return count_request(
        request, group=SIGNUP_IP_GROUP, key="ip", rate=signup_rate_per_ip, message=_signing_up_too_often
    )
