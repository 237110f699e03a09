"""Sign-up (switchable with ALLOW_SIGNUP); sign-in, sign-out and password change are Django's."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import login as sign_in
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods

from generator.limits import limit_login_per_ip, limit_login_per_username

from .forms import SignupForm

# Sign-in attempts are limited per client address and per username (POSTs only).
login = login_not_required(
    limit_login_per_ip(limit_login_per_username(auth_views.LoginView.as_view(redirect_authenticated_user=True)))
)


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
