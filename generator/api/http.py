"""The API's plumbing: authentication, JSON errors, request bodies and list pages.

Errors are always {"error": code, "message": text, "details"?: {...}} with the right status.
Session or personal API token authentication (`Authorization: Bearer …`); session requests
that change something carry Django's CSRF token in X-CSRFToken.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import RequestDataTooBig
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from accounts.models import Scope
from accounts.tokens import bearer_credentials, bearer_token

from .. import limits
from ..lib.keyset import Page, Row, cut_page, decode_cursor

DEFAULT_LIMIT = 20
MAX_LIMIT = 100

# json.loads joins escaped surrogate pairs into one character, so any surrogate left in a
# string is a lone one ("\ud800"): no database can store it.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")

View = Callable[..., HttpResponseBase]


def error(status: int, code: str, message: str, details: dict | None = None) -> JsonResponse:
    """`code` is for programs and never translated; `message` (and details) are for people."""
    body: dict[str, Any] = {"error": code, "message": str(message)}
    if details is not None:
        body["details"] = {field: [str(text) for text in texts] for field, texts in details.items()}
    return JsonResponse(body, status=status)


def too_many_requests(exceeded: limits.Exceeded) -> JsonResponse:
    body = {"error": exceeded.code, "message": exceeded.message, "retry_after": exceeded.retry_after}
    if exceeded.reason:
        body["reason"] = exceeded.reason
    if exceeded.resets_at is not None:
        body["resets_at"] = exceeded.resets_at.astimezone(UTC).isoformat()
    response = JsonResponse(body, status=429)
    response["Retry-After"] = str(exceeded.retry_after)
    return response


def api_view(*methods: str, page_asset: bool = False) -> Callable[[View], View]:
    """Signed-in JSON endpoints: 401 and 405 as JSON instead of redirects and empty bodies.

    A personal API token (`Authorization: Bearer …`) authenticates without CSRF; a bad token
    is a 401 and never falls back to the session. The session path keeps Django's CSRF check.
    Every call counts against the person's API_RATE, except a `page_asset` (an image file)
    fetched by a signed-in browser: a gallery page loads dozens of them at once. A BadRequest
    raised by the view is answered with its JSON error.
    """

    def decorator(view: View) -> View:
        @csrf_exempt  # only for bearer tokens: the session path runs the CSRF check itself, below
        @login_not_required
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if bearer_credentials(request) is not None:
                token = bearer_token(request)
                if token is None:
                    return error(401, "not_authenticated", _("The API token is malformed, unknown or revoked."))
                if not token.has_scope(Scope.API):
                    return error(
                        403, "token_scope", _("This token is for /metrics only: make an API token to use the API.")
                    )
                request.user = token.owner
                counted = True
            else:
                # Not signed in is a 401 whatever the method: a script that forgot its token is
                # told so, not asked for a CSRF token. Without a session there is nothing for a
                # forged request to ride on; a signed-in session still needs the CSRF token.
                if not request.user.is_authenticated:
                    return error(401, "not_authenticated", _("Sign in to use the API."))
                rejected = _csrf_check(request)
                if rejected is not None:
                    return rejected
                counted = not page_asset
            if counted and (exceeded := limits.api_rate_exceeded(request)) is not None:
                return too_many_requests(exceeded)
            if request.method not in methods:
                # Translators: %(methods)s are HTTP methods such as "GET or DELETE".
                allowed = _(" or ").join(methods)
                response = error(405, "method_not_allowed", _("Use %(methods)s here.") % {"methods": allowed})
                response["Allow"] = ", ".join(methods)
                return response
            try:
                return view(request, *args, **kwargs)
            except BadRequest as refusal:
                return refusal.response

        return wrapper

    return decorator


def _csrf_check(request: HttpRequest) -> HttpResponse | None:
    """Django's CSRF check for the session path (a 403 from CSRF_FAILURE_VIEW, or None)."""
    return CsrfViewMiddleware(_no_view).process_view(request, _no_view, (), {})


def _no_view(request: HttpRequest) -> HttpResponse:
    """Stands in for the view the CSRF check is asked about (it never calls it)."""
    return HttpResponse()


# --- request bodies ---------------------------------------------------------------------------


class BadRequest(Exception):
    """A request the API refuses as a whole: carries the JSON error to answer with."""

    def __init__(self, response: JsonResponse) -> None:
        super().__init__(response.status_code)
        self.response = response


def json_object(request: HttpRequest, *, example: str = "") -> dict:
    """The request body as a JSON object, or BadRequest (413 too large, 400 not an object)."""
    try:
        raw = request.body
    except RequestDataTooBig:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raise BadRequest(
            error(
                413,
                "payload_too_large",
                _("The request body is larger than %(limit)s bytes.") % {"limit": limit},
                {"body": [_("Send a smaller JSON object.")]},
            )
        ) from None
    try:
        body = json.loads(raw or b"null")
    except (ValueError, RecursionError):  # RecursionError: nested too deeply
        raise _not_an_object(example or _("The request body is not valid JSON.")) from None
    if not isinstance(body, dict):
        raise _not_an_object(example or _("The request body must be a JSON object."))
    return body


def _not_an_object(message: str) -> BadRequest:
    return BadRequest(error(400, "validation_error", message, {"body": [_("Send a JSON object.")]}))


# --- list pages -------------------------------------------------------------------------------


def bad_query(field: str, message: str) -> BadRequest:
    return BadRequest(error(400, "validation_error", _("Some query parameters are not valid."), {field: [message]}))


def text_query(request: HttpRequest, field: str) -> str:
    """The ?field= text, stripped; BadRequest when it holds a NUL (PostgreSQL cannot compare
    text with one in it: a 400, not a 500)."""
    value = request.GET.get(field, "")
    if "\x00" in value:
        raise bad_query(field, _("Contains a NUL character."))
    return value.strip()


def list_page(rows: QuerySet[Any, Row], request: HttpRequest) -> Page[Row]:
    """The page named by ?cursor= and ?limit=, newest first; BadRequest for values not ours."""
    token = request.GET.get("cursor", "")
    if token and decode_cursor(token) is None:
        raise bad_query("cursor", _("This cursor is not one Atelier gave out; start again without it."))
    return cut_page(rows, token, page_limit(request))


def page_limit(request: HttpRequest) -> int:
    """?limit=, from 1 to MAX_LIMIT (DEFAULT_LIMIT without one); BadRequest for anything else."""
    raw_limit = request.GET.get("limit", str(DEFAULT_LIMIT))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise bad_query("limit", _("Give a whole number from 1 to %(max)s.") % {"max": MAX_LIMIT})
    return int(raw_limit)


JSON_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "prompt": (str,),
    "negative_prompt": (str,),
    "provider": (str,),
    "model": (str,),
    "width": (int,),
    "height": (int,),
    "num_images": (int,),
    "steps": (int,),
    "scale": (int, float),
    "seed": (int,),
    "preset": (int,),  # a style preset's id (GET /api/v1/presets)
}


def json_form_data(body: dict) -> tuple[dict, dict]:
    """The generate form's fields from a JSON body, type-checked before the form sees them (no
    `true` posing as 1), and what is wrong with the others (details)."""
    data, details = {}, {}
    for field, types in JSON_FIELD_TYPES.items():
        if field not in body or body[field] is None:
            continue
        value = body[field]
        if isinstance(value, bool) or not isinstance(value, types):
            if types == (str,):
                details[field] = [_("Expected a string.")]
            else:
                details[field] = [_("Expected a number.") if float in types else _("Expected a whole number.")]
        elif isinstance(value, str) and LONE_SURROGATE.search(value):
            details[field] = [_("Contains invalid Unicode (a lone surrogate such as \\ud800).")]
        else:
            data[field] = value
    return data, details
