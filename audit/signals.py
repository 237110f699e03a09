"""Sign-in, failed sign-in and sign-out, from Django's own signals: every way in (the site's
sign-in page, the admin's, sign-up's automatic sign-in) goes through django.contrib.auth's
login(), authenticate() and logout(), which send them once each."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

from .log import record, write
from .models import Event


@receiver(user_logged_in, dispatch_uid="audit.sign_in")
def signed_in(sender: type, request: HttpRequest | None, user: Any, **kwargs: object) -> None:
    record(Event.SIGN_IN, request=request, actor=user)


@receiver(user_logged_out, dispatch_uid="audit.sign_out")
def signed_out(sender: type, request: HttpRequest | None, user: Any, **kwargs: object) -> None:
    if user is not None:  # signing out while signed out changes nothing
        record(Event.SIGN_OUT, request=request, actor=user)


@receiver(user_login_failed, dispatch_uid="audit.sign_in_failed")
def sign_in_failed(
    sender: str, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: object
) -> None:
    """The account tried, when the name typed is one (a wrong password, an inactive account);
    for a name that matches no account, nothing of what was typed (it is often a password
    typed into the wrong box). The password is never read."""
    model = get_user_model()
    typed = credentials.get(model.USERNAME_FIELD)
    account = model._default_manager.filter(**{model.USERNAME_FIELD: typed}).first() if isinstance(typed, str) else None
    # write(), not record(): someone signed in who fails another sign-in is not the actor.
    write(Event.SIGN_IN_FAILED, request=request, actor=account)
