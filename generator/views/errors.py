"""What the site answers when something is refused or fails: 404, 500, CSRF failure, 429 pages.

Pages under /api/ answer in JSON like the rest of the API (generator.api.http).
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views import defaults
from django.views.csrf import csrf_failure as default_csrf_failure
from django.views.decorators.csrf import csrf_exempt
from django_htmx.http import reswap, retarget

from ..api.http import error
from ..limits import Exceeded


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler404."""
    if request.path.startswith("/api/"):
        return error(404, "not_found", _("No such endpoint or object."))
    return render(request, "404.html", status=404)


@csrf_exempt  # it changes nothing: any method gets the same 404
@login_not_required
def api_not_found(request: HttpRequest, path: str = "") -> HttpResponse:
    """Every /api/ path no API route matches, signed in or not, with DEBUG on too (handler404
    only answers with DEBUG off; Django's technical page is HTML)."""
    return error(404, "not_found", _("No such endpoint or object."))


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: the API answers in JSON there too (the error contract); pages get 500.html."""
    if request.path.startswith("/api/"):
        return error(500, "server_error", _("Something went wrong on the server. Please try again."))
    # Django's own way: the template alone, no context processors that could fail again.
    return defaults.server_error(request)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW."""
    if request.path.startswith("/api/"):
        return error(403, "csrf_failed", _("Send Django's CSRF token in the X-CSRFToken header."))
    return default_csrf_failure(request, reason)


def too_many_requests(
    request: HttpRequest, exceeded: Exceeded, *, template: str, context: Callable[[], dict]
) -> HttpResponse:
    """A 429 for a page's form (create, history, sign-in). htmx swaps the message into the page's #form-problem box (base.html
    lets 429 answers swap); without JavaScript the page itself comes again with the message."""
    if request.headers.get("HX-Request") == "true":
        response = render(request, "generator/_form_problem.html", {"message": exceeded.message}, status=429)
        response = reswap(retarget(response, "#form-problem"), "outerHTML")
    else:
        response = render(request, template, {**context(), "limit_message": exceeded.message}, status=429)
    response["Retry-After"] = str(exceeded.retry_after)
    return response
