"""Sign-up, and naming a new API token."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import UserCreationForm, UsernameField
from django.contrib.auth.models import User
from django.utils.translation import gettext_lazy as _


class SignupForm(UserCreationForm):
    class Meta:  # UserCreationForm.Meta, written out (type checkers do not see nested classes)
        model = User
        fields = ("username",)
        field_classes = {"username": UsernameField}


class TokenForm(forms.Form):
    name = forms.CharField(
        label=_("Token name"),
        max_length=100,
        strip=True,
        help_text=_("What the token is for, such as “laptop script”. Up to 100 characters."),
    )
