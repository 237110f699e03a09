"""Audit findings 5 and 9: sign-up is limited per client address, follows SIGNUP (open,
approval by default, closed), and two sign-ups racing for one name give the loser a form error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.contrib.messages.storage.fallback import FallbackStorage
from django.contrib.sessions.backends.cache import SessionStore
from django.test import Client, RequestFactory
from django.urls import reverse

from accounts.admin import approve_accounts
from accounts.forms import SignupForm

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "a lantern in the rain 2024"
pytestmark = pytest.mark.usefixtures("ratelimit_clock")


def sign_up(client: Client, username: str, address: str = "192.0.2.1"):
    data = {"username": username, "password1": PASSWORD, "password2": PASSWORD}
    return client.post(reverse("signup"), data, REMOTE_ADDR=address)


def sign_in(username: str, password: str = PASSWORD) -> int:
    return Client().post(reverse("login"), {"username": username, "password": password}).status_code


# Throttled


def test_a_sign_up_flood_from_one_address_gets_429(client, db, settings):
    settings.SIGNUP = "open"
    settings.SIGNUP_RATE_PER_IP = "3/h"
    for n in range(3):
        assert sign_up(Client(), f"throwaway{n}").status_code == 302
    refused = sign_up(client, "throwaway3")
    assert refused.status_code == 429 and 1 <= int(refused["Retry-After"]) <= 3600
    html = refused.content.decode()
    assert "Too many sign-ups from your network address" in html and "minute" in html
    assert 'value="throwaway3"' in html  # the form comes back with the name typed
    assert not User.objects.filter(username="throwaway3").exists()
    assert sign_up(client, "someone", address="198.51.100.4").status_code == 302


def test_failed_sign_ups_count_too(client, db, settings):
    settings.SIGNUP_RATE_PER_IP = "2/h"
    bad = {"username": "x", "password1": "a", "password2": "b"}
    assert [client.post(reverse("signup"), bad).status_code for _ in range(3)] == [400, 400, 429]


def test_the_sign_up_limit_counts_the_client_behind_a_trusted_proxy(client, db, settings):
    settings.SIGNUP_RATE_PER_IP = "1/h"
    settings.TRUSTED_PROXIES = ["10.0.0.1"]
    proxied = {"REMOTE_ADDR": "10.0.0.1"}
    data = {"username": "x", "password1": "a", "password2": "b"}
    assert client.post(reverse("signup"), data, HTTP_X_FORWARDED_FOR="198.51.100.1", **proxied).status_code == 400
    assert client.post(reverse("signup"), data, HTTP_X_FORWARDED_FOR="198.51.100.1", **proxied).status_code == 429
    assert client.post(reverse("signup"), data, HTTP_X_FORWARDED_FOR="198.51.100.2", **proxied).status_code == 400


# The policy


def test_by_default_a_new_account_waits_for_approval(client, db, settings):
    assert settings.SIGNUP == "approval"
    assert "administrator approves new accounts" in client.get(reverse("signup")).content.decode()
    response = sign_up(client, "newcomer")
    assert response.status_code == 201
    assert "An administrator must approve it" in response.content.decode()
    user = User.objects.get(username="newcomer")
    assert not user.is_active and user.check_password(PASSWORD)
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("generator:create")).status_code == 302
    assert sign_in("newcomer") == 200  # refused like a wrong password


def approve(users) -> list[str]:
    """Run the admin action as the User admin would, and return the messages it gave."""
    request = RequestFactory().post("/admin/auth/user/")
    request.session = SessionStore()
    storage = FallbackStorage(request)
    request._messages = storage
    approve_accounts(admin.site.get_model_admin(User), request, users)
    return [str(message) for message in storage]


def test_staff_approve_an_account_and_it_signs_in(client, db):
    sign_up(client, "newcomer")
    sign_up(Client(), "second", address="198.51.100.9")
    active = User.objects.create_user("already", password=PASSWORD)
    assert approve(User.objects.all()) == ["Approved 2 accounts."]
    assert sign_in("newcomer") == 302 and sign_in("second") == 302 and sign_in("already") == 302
    active.refresh_from_db()
    assert active.is_active


def test_the_user_admin_offers_the_approve_action(admin_client):
    page = admin_client.get(reverse("admin:auth_user_changelist"))
    assert "approve_accounts" in page.content.decode()


def test_closed_sign_up_is_a_404_and_not_offered(client, db, settings):
    settings.SIGNUP = "closed"
    assert client.get(reverse("signup")).status_code == 404
    assert sign_up(client, "newcomer").status_code == 404
    assert not User.objects.exists()
    assert reverse("signup") not in client.get(reverse("login")).content.decode()


def test_open_sign_up_signs_in_at_once(client, db, settings):
    settings.SIGNUP = "open"
    response = sign_up(client, "newcomer")
    assert response.status_code == 302 and response["Location"] == reverse("generator:create")
    assert User.objects.get(username="newcomer").is_active
    assert client.get(reverse("generator:create")).status_code == 200


def settings_signup(**environment: str) -> str:
    """settings.SIGNUP as a fresh process reads it from these variables."""
    env = {key: value for key, value in os.environ.items() if key not in ("SIGNUP", "ALLOW_SIGNUP")}
    env |= {"DJANGO_SETTINGS_MODULE": "tests.settings", **environment}
    code = "import django; django.setup(); from django.conf import settings; print(settings.SIGNUP)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    return done.stdout.strip() or done.stderr.strip().splitlines()[-1]


@pytest.mark.subprocess
def test_the_older_allow_signup_still_works():
    assert settings_signup() == "approval"
    assert settings_signup(ALLOW_SIGNUP="false") == "closed"
    assert settings_signup(ALLOW_SIGNUP="true") == "open"
    assert settings_signup(SIGNUP="Approval", ALLOW_SIGNUP="true") == "approval"
    assert "SIGNUP must be open, approval or closed" in settings_signup(SIGNUP="maybe")


# Races


def test_the_loser_of_a_sign_up_race_gets_the_form_error_not_a_500(client, db, settings, monkeypatch):
    settings.SIGNUP = "open"
    checked = SignupForm.is_valid

    def someone_else_wins(form: SignupForm) -> bool:
        # The form found the name free; another request takes it before this one saves.
        valid = checked(form)
        User.objects.create_user(form.cleaned_data["username"], password="the winner's")
        return valid

    monkeypatch.setattr(SignupForm, "is_valid", someone_else_wins)
    response = sign_up(client, "dora")
    assert response.status_code == 400
    assert "A user with that username already exists." in response.content.decode()
    assert User.objects.filter(username="dora").count() == 1
    assert not User.objects.get(username="dora").check_password(PASSWORD)
    assert "_auth_user_id" not in client.session
