"""The account pages: sign-in (limited, and the admin's sign-in behind the same limits),
sign-up (limited, and open, by approval or closed: settings.SIGNUP), and the account page with
personal API tokens (created and shown once, listed, revoked one by one or all at once; staff
can make a token for /metrics instead of the API). Sign-out
is Django's own view; password change is Django's, with the person's token count."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth import login as sign_in
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audit import log as audit
from audit.models import Event
from generator.ops import portable
from generator.views.errors import too_many_requests
from generator.views.http import safe_next

from . import tokens
from .forms import SignupForm, TokenForm
from .http import AuthenticatedHttpRequest
from .limits import sign_in_exceeded, sign_up_exceeded
from .models import ApiToken

django_login = auth_views.LoginView.as_view(redirect_authenticated_user=True)


@login_not_required
def login(request: HttpRequest) -> HttpResponseBase:
    """Django's sign-in page; attempts (POSTs) are limited (accounts.limits)."""
    if request.method == "POST" and (exceeded := sign_in_exceeded(request)) is not None:

        def sign_in_page() -> dict:
            return {"form": AuthenticationForm(request)}

        return too_many_requests(request, exceeded, template="registration/login.html", context=sign_in_page)
    return django_login(request)


@never_cache
@login_not_required
def admin_login(request: HttpRequest) -> HttpResponseBase:
    """The admin's sign-in page (routed before admin.site.urls), counted with the same limits as
    the site's: one set of counters, whichever form a guess comes through."""
    if request.method == "POST" and (exceeded := sign_in_exceeded(request)) is not None:

        def admin_sign_in_page() -> dict:
            # What AdminSite.login gives its template, with an empty form.
            return {
                **admin.site.each_context(request),
                "title": gettext("Log in"),
                "app_path": request.get_full_path(),
                "form": AdminAuthenticationForm(request),
                REDIRECT_FIELD_NAME: request.POST.get(REDIRECT_FIELD_NAME, ""),
            }

        return too_many_requests(
            request, exceeded, template="registration/admin_login.html", context=admin_sign_in_page
        )
    return admin.site.login(request)


@login_not_required
@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """Sign-up as settings.SIGNUP says: open (signed in at once), approval (the account is made
    inactive and waits for staff), closed (404). Submissions are limited per client address."""
    if settings.SIGNUP == "closed":
        raise Http404(gettext("Sign-up is turned off on this server."))
    if request.user.is_authenticated:
        return redirect(settings.LOGIN_REDIRECT_URL)
    if request.method == "POST" and (exceeded := sign_up_exceeded(request)) is not None:

        def sign_up_page() -> dict:
            return {"form": SignupForm(initial={"username": request.POST.get("username", "")})}

        return too_many_requests(request, exceeded, template="registration/signup.html", context=sign_up_page)
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        approval = settings.SIGNUP == "approval"
        user = form.create_account(active=not approval)
        if user is None:  # someone took the name since the form checked it
            return render(request, "registration/signup.html", {"form": form}, status=400)
        if approval:
            return render(request, "registration/signup_pending.html", {"username": user.get_username()}, status=201)
        sign_in(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect(settings.LOGIN_REDIRECT_URL)
    return render(request, "registration/signup.html", {"form": form}, status=400 if form.errors else 200)


# --- the account page: API tokens -----------------------------------------------------------


def _active_tokens(request: AuthenticatedHttpRequest):
    """The person's tokens not revoked yet; expired ones too, marked on the page, so people see
    why a script stopped and can tidy up."""
    return ApiToken.objects.filter(owner=request.user, revoked_at__isnull=True)


def _get_token_for_user(request: AuthenticatedHttpRequest, token_id: object) -> ApiToken:
    """One of the signed-in person's unrevoked tokens; anyone else's (or a revoked one) is a 404."""
    return get_object_or_404(_active_tokens(request), pk=token_id)


def _page(
    request: AuthenticatedHttpRequest, form: TokenForm, *, new_token: tokens.NewToken | None = None, status: int = 200
) -> HttpResponse:
    context = {"form": form, "tokens": _active_tokens(request), "new_token": new_token}
    return render(request, "registration/account.html", context, status=status)


@never_cache  # the one page that carries a new token must not be kept by any cache
@require_GET
def account(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _page(request, TokenForm(staff=request.user.is_staff), new_token=tokens.take_shown_once(request))


@never_cache
@require_http_methods(["GET", "POST"])
def token_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Post/Redirect/Get: the new token goes to the account page through the session and is shown
    there once, so a reload or the language switcher (which comes back here with a GET) never
    makes a second token."""
    if request.method == "GET":
        return redirect("account")
    form = TokenForm(request.POST, staff=request.user.is_staff)
    if not form.is_valid():
        return _page(request, form, status=400)
    new_token = tokens.create_token(
        request.user,
        form.cleaned_data["name"],
        expires_in_days=form.cleaned_data["expires_in"],
        scopes=form.scopes,
        request=request,
    )
    tokens.show_once(request, new_token)
    return redirect(reverse("account") + "#new-token-box")


@require_POST
def token_revoke(request: AuthenticatedHttpRequest, token_id: str) -> HttpResponse:
    token = _get_token_for_user(request, token_id)
    tokens.revoke_token(token, request=request)
    messages.success(
        request, gettext("Revoked the token “%(name)s”. Scripts using it now get 401.") % {"name": token.name}
    )
    return redirect("account")


@require_POST
def token_revoke_all(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Revoke all the person's tokens (the account page, and the password page: a new password
    alone leaves tokens working). Back to the page it came from, if that is one of ours."""
    count = tokens.revoke_all(request.user, request=request)
    text = ngettext(
        "Revoked %(count)s API token. Scripts using it now get 401.",
        "Revoked %(count)s API tokens. Scripts using them now get 401.",
        count,
    ) % {"count": count}
    messages.success(request, text)
    return redirect(safe_next(request, reverse("account")))


@require_POST
def export_mine(request: AuthenticatedHttpRequest) -> StreamingHttpResponse:
    """The account page's "Download my data": the person's own export (generator.ops.portable) as a streamed zip.
    A POST (CSRF-checked): each download is an audit entry, so no link or prefetch starts one."""
    result = portable.collect(request.user)
    audit.record(Event.EXPORTED, request=request, detail={"user": request.user.get_username(), **result.counts})
    response = StreamingHttpResponse(result.stream(), content_type="application/zip")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="atelier-export-{stamp}.zip"'
    response["Cache-Control"] = "private, no-store"
    return response


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's password change, telling how many API tokens would survive it."""

    request: AuthenticatedHttpRequest

    def get_context_data(self, **kwargs: object) -> dict:
        context = super().get_context_data(**kwargs)
        context["token_count"] = _active_tokens(self.request).count()
        return context

    def form_valid(self, form: PasswordChangeForm) -> HttpResponse:
        response = super().form_valid(form)
        audit.record(Event.PASSWORD_CHANGED, request=self.request, target=form.user)
        return response
