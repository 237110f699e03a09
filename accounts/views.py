"""The account pages: sign-in (limited), sign-up (switchable with ALLOW_SIGNUP), and the
account page with personal API tokens (created and shown once, listed, revoked). Sign-out and
password change are Django's own views."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as sign_in
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.forms import AuthenticationForm
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from generator.views.errors import too_many_requests

from . import tokens
from .forms import SignupForm, TokenForm
from .http import AuthenticatedHttpRequest
from .limits import sign_in_exceeded
from .models import ApiToken

django_login = auth_views.LoginView.as_view(redirect_authenticated_user=True)


@login_not_required
def login(request: HttpRequest) -> HttpResponseBase:
    """Django's sign-in page; attempts (POSTs) are limited per client address and per username."""
    if request.method == "POST" and (exceeded := sign_in_exceeded(request)) is not None:

        def sign_in_page() -> dict:
            return {"form": AuthenticationForm(request)}

        return too_many_requests(request, exceeded, template="registration/login.html", context=sign_in_page)
    return django_login(request)


@login_not_required
@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if not settings.ALLOW_SIGNUP:
        raise Http404(gettext("Sign-up is turned off on this server."))
    if request.user.is_authenticated:
        return redirect(settings.LOGIN_REDIRECT_URL)
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        sign_in(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect(settings.LOGIN_REDIRECT_URL)
    return render(request, "registration/signup.html", {"form": form}, status=400 if form.errors else 200)


# --- the account page: API tokens -----------------------------------------------------------


def _active_tokens(request: AuthenticatedHttpRequest):
    return ApiToken.objects.filter(owner=request.user, revoked_at__isnull=True)


def _get_token_for_user(request: AuthenticatedHttpRequest, token_id: object) -> ApiToken:
    """One of the signed-in person's working tokens; anyone else's (or a revoked one) is a 404."""
    return get_object_or_404(_active_tokens(request), pk=token_id)


def _page(
    request: AuthenticatedHttpRequest, form: TokenForm, *, new_token: tokens.NewToken | None = None, status: int = 200
) -> HttpResponse:
    context = {"form": form, "tokens": _active_tokens(request), "new_token": new_token}
    return render(request, "registration/account.html", context, status=status)


@never_cache
@require_GET
def account(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _page(request, TokenForm())


@never_cache  # the one response that carries a new token must not be kept by any cache
@require_POST
def token_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = TokenForm(request.POST)
    if not form.is_valid():
        return _page(request, form, status=400)
    new_token = tokens.create_token(request.user, form.cleaned_data["name"])
    return _page(request, TokenForm(), new_token=new_token, status=201)


@require_POST
def token_revoke(request: AuthenticatedHttpRequest, token_id: str) -> HttpResponse:
    token = _get_token_for_user(request, token_id)
    tokens.revoke_token(token)
    messages.success(
        request, gettext("Revoked the token “%(name)s”. Scripts using it now get 401.") % {"name": token.name}
    )
    return redirect("account")
