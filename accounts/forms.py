"""Sign-up (and creating the account, race-safe), and naming a new API token (its expiry, and
for staff what it is for: the API or Prometheus' /metrics)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import UserCreationForm, UsernameField
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from .models import Scope


class SignupForm(UserCreationForm):
    class Meta:  # UserCreationForm.Meta, written out (type checkers do not see nested classes)
        model = User
        fields = ("username",)
        field_classes = {"username": UsernameField}

    def create_account(self, *, active: bool) -> User | None:
        """Save the new user (inactive while waiting for approval), or None with the form's
        "already exists" error when a concurrent sign-up took the name after the form's check:
        the database's unique constraint decides, and the loser sees a form error, not a 500."""
        user = self.save(commit=False)
        user.is_active = active
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError:
            self.add_error("username", User._meta.get_field("username").error_messages["unique"])
            return None
        return user


class TokenForm(forms.Form):
    name = forms.CharField(
        label=_("Token name"),
        max_length=100,
        strip=True,
        help_text=_("What the token is for, such as “laptop script”. Up to 100 characters."),
    )
    expires_in = forms.TypedChoiceField(
        label=_("Expires"),
        # "" (also a form that leaves the field out): the token works until it is revoked.
        choices=[
            ("", pgettext_lazy("token expiry", "Never")),
            (30, _("In 30 days")),
            (90, _("In 90 days")),
            (365, _("In a year")),
        ],
        coerce=int,
        empty_value=None,
        required=False,
        help_text=_("After this the token stops working, as if revoked."),
    )

    # Only on staff's form (see __init__): a token is for the API or for /metrics, never both,
    # so the credential a Prometheus server keeps cannot make images.
    use = forms.ChoiceField(
        label=_("For"),
        choices=[
            (Scope.API.value, _("The API (/api/v1 and /v1)")),
            (Scope.METRICS.value, _("Prometheus metrics (/metrics) only")),
        ],
        initial=Scope.API.value,
        required=False,
        help_text=_("A metrics token can read /metrics and nothing else."),
    )

    def __init__(self, *args: Any, staff: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not staff:
            del self.fields["use"]  # what others post for it is ignored: their tokens use the API

    @property
    def scopes(self) -> frozenset[str]:
        """The new token's scopes (call after is_valid())."""
        return frozenset({self.cleaned_data.get("use") or Scope.API.value})
