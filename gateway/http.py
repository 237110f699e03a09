"""The gateway's plumbing: bearer-token authentication, the API rate, JSON bodies, and answers
that are always in OpenAI's error shape (never Django's HTML pages).

Only personal API tokens (`Authorization: Bearer atl_…`, accounts.tokens) authenticate here:
no session, so no CSRF. Every authenticated call counts against the person's API_RATE, as
/api/v1's calls do.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import DisallowedHost, RequestDataTooBig
from django.db import connection
from django.http import HttpRequest, HttpResponseBase
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from accounts.tokens import authenticate_bearer
from generator import limits

from .errors import AUTHENTICATION, SERVER, OpenAIError, invalid, rate_limited

logger = logging.getLogger(__name__)

T = TypeVar("T")
AsyncView = Callable[..., Awaitable[HttpResponseBase]]


def openai_view(*methods: str, authenticated: bool = True) -> Callable[[AsyncView], Any]:
    """An async /v1/ endpoint: 405 for other methods, 401 without a valid token, 429 past
    API_RATE, an OpenAIError raised by the view answered as such, anything else a 500 in the
    same shape. The checks run on a pool thread (in_pool)."""

    def decorator(view: AsyncView) -> Any:  # Any: django-stubs' path() expects sync views
        @wraps(view)
        async def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            response: HttpResponseBase
            try:
                await in_pool(_admit)(request, methods, authenticated)
                response = await view(request, *args, **kwargs)
            except OpenAIError as refusal:
                response = refusal.response()
            except Exception:
                response = _server_error(request)
            # SecurityMiddleware's header, which /v1/ skips over ASGI (gateway.asgi).
            response["X-Content-Type-Options"] = "nosniff"
            return response

        # A bearer token, not a cookie, says who is asking: nothing for a forged request to ride on.
        return csrf_exempt(login_not_required(wrapper))

    return decorator


def in_pool(function: Callable[..., T]) -> Callable[..., Awaitable[T]]:
    """`function` run on the shared pool's threads, its database connection closed afterwards.

    Not thread_sensitive: that would run it on a thread kept for the request until it ends, a
    thread per waiting generation (gateway.asgi says why that matters).
    """

    def closing(*args: Any, **kwargs: Any) -> T:
        try:
            return function(*args, **kwargs)
        finally:
            connection.close()

    return sync_to_async(closing, thread_sensitive=False)


def _admit(request: HttpRequest, methods: tuple[str, ...], authenticated: bool) -> None:
    """Raise the OpenAIError that refuses this request, or set request.user to the token's owner.

    Also what the site's middleware does elsewhere, as /v1/ skips it over ASGI (gateway.asgi):
    the Host header checked against ALLOWED_HOSTS, the messages in the client's language.
    """
    try:
        request.get_host()
    except DisallowedHost:
        raise OpenAIError(400, _("The Host header is not one this server answers to.")) from None
    translation.activate(translation.get_language_from_request(request))
    if request.method not in methods:
        raise OpenAIError(
            405,
            _("%(method)s is not supported here; use %(allowed)s.")
            % {"method": request.method, "allowed": " or ".join(methods)},
            headers={"Allow": ", ".join(methods)},
        )
    if not authenticated:
        return
    user = authenticate_bearer(request)
    if user is None:
        raise OpenAIError(
            401,
            _(
                "Send a valid Atelier API token as `Authorization: Bearer atl_…` "
                "(your account page makes them). This one is missing, malformed, expired or revoked."
            ),
            type=AUTHENTICATION,
            code="invalid_api_key",
        )
    request.user = user
    if (exceeded := limits.api_rate_exceeded(request)) is not None:
        raise rate_limited(exceeded)


def _server_error(request: HttpRequest) -> HttpResponseBase:
    logger.exception("unexpected error answering %s %s", request.method, request.path)
    refusal = OpenAIError(
        500,
        _("Something went wrong on the server."),
        type=SERVER,
        code="server_error",
        # A generation may already have made its task: another try would make a second one.
        retry=request.method in ("GET", "HEAD"),
    )
    return refusal.response()


def json_body(request: HttpRequest) -> dict:
    """The body as a JSON object, or a 400 (413 when larger than Atelier reads)."""
    try:
        raw = request.body
    except RequestDataTooBig:
        raise OpenAIError(
            413,
            _("The request body is larger than %(limit)s bytes.") % {"limit": settings.DATA_UPLOAD_MAX_MEMORY_SIZE},
            code="request_too_large",
        ) from None
    try:
        body = json.loads(raw or b"null")
    except (ValueError, RecursionError):
        raise invalid(_("The request body is not valid JSON.")) from None
    if not isinstance(body, dict):
        raise invalid(_("The request body must be a JSON object."))
    return body
