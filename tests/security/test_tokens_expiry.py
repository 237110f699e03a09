"""Optional expiry on new API tokens: chosen when made (never, 30, 90, 365 days), shown on the
account page; an expired token is a 401 like a revoked one."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiToken
from accounts.tokens import authenticate_bearer, create_token

TOKEN = re.compile(r"atl_[A-Za-z0-9_-]{43}")


def works(plaintext: str) -> bool:
    request = RequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return authenticate_bearer(request) is not None


@pytest.mark.parametrize("days", [30, 90, 365])
def test_a_token_made_with_an_expiry_has_it(auth_client, user, days):
    response = auth_client.post(reverse("api_token_create"), {"name": "ci", "expires_in": str(days)})
    assert response.status_code == 302
    token = ApiToken.objects.get(owner=user)
    assert token.expires_at is not None
    assert abs(token.expires_at - (timezone.now() + timedelta(days=days))) < timedelta(minutes=1)
    page = auth_client.get(reverse("account")).content.decode()
    assert token.expires_at.strftime("%Y-%m-%d") in page  # <time datetime="…">


@pytest.mark.parametrize("data", [{"expires_in": ""}, {}])
def test_never_is_the_default(auth_client, user, data):
    assert auth_client.post(reverse("api_token_create"), {"name": "ci", **data}).status_code == 302
    assert ApiToken.objects.get(owner=user).expires_at is None
    assert "No expiry" in auth_client.get(reverse("account")).content.decode()


@pytest.mark.parametrize("value", ["7", "-30", "forever", "36500"])
def test_only_the_offered_expiries_are_accepted(auth_client, user, value):
    assert auth_client.post(reverse("api_token_create"), {"name": "ci", "expires_in": value}).status_code == 400
    assert not ApiToken.objects.exists()


def test_the_form_offers_the_choices(auth_client):
    page = auth_client.get(reverse("account")).content.decode()
    for value in ('value=""', 'value="30"', 'value="90"', 'value="365"'):
        assert value in page


def test_an_expired_token_is_a_401_like_a_revoked_one(auth_client, user):
    new = create_token(user, "ci", expires_in_days=30)
    assert works(new.plaintext)
    api = Client()
    assert api.get("/api/v1/tasks", HTTP_AUTHORIZATION=f"Bearer {new.plaintext}").status_code == 200
    ApiToken.objects.filter(pk=new.token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert not works(new.plaintext)
    response = api.get("/api/v1/tasks", HTTP_AUTHORIZATION=f"Bearer {new.plaintext}")
    assert response.status_code == 401
    page = auth_client.get(reverse("account")).content.decode()
    row = page[page.index(f'id="token-{new.token.pk}"') :]
    assert "Expired" in row[: row.index("</tr>")]
    # Still listed, so it can be revoked (tidied away) like any other.
    assert auth_client.post(reverse("api_token_revoke", args=[new.token.pk])).status_code == 302
