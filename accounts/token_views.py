"""The account page: personal API tokens, created (shown once), listed and revoked."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from . import tokens
from .models import ApiToken


class TokenForm(forms.Form):
    name = forms.CharField(
        label=_("Token name"),
        max_length=100,
        strip=True,
        help_text=_("What the token is for, such as “laptop script”. Up to 100 characters."),
    )


def _active_tokens(request: HttpRequest):
    return ApiToken.objects.filter(owner=request.user, revoked_at__isnull=True)


def _get_token_for_user(request: HttpRequest, token_id: object) -> ApiToken:
    """One of the signed-in person's working tokens; anyone else's (or a revoked one) is a 404."""
    return get_object_or_404(_active_tokens(request), pk=token_id)


def _page(request: HttpRequest, form: TokenForm, *, new_token: tokens.NewToken | None = None, status: int = 200) -> HttpResponse:
    context = {"form": form, "tokens": _active_tokens(request), "new_token": new_token}
    return render(request, "registration/account.html", context, status=status)


@never_cache
@require_GET
def account(request: HttpRequest) -> HttpResponse:
    return _page(request, TokenForm())


@never_cache  # the one response that carries a new token must not be kept by any cache
@require_POST
def token_create(request: HttpRequest) -> HttpResponse:
    form = TokenForm(request.POST)
    if not form.is_valid():
        return _page(request, form, status=400)
    new_token = tokens.create_token(request.user, form.cleaned_data["name"])
    return _page(request, TokenForm(), new_token=new_token, status=201)


@require_POST
def token_revoke(request: HttpRequest, token_id: str) -> HttpResponse:
    token = _get_token_for_user(request, token_id)
    tokens.revoke_token(token)
    messages.success(
        request, gettext("Revoked the token “%(name)s”. Scripts using it now get 401.") % {"name": token.name}
    )
    return redirect("account")
