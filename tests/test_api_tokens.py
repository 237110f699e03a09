"""Personal API tokens: created on the account page (shown once, stored hashed), used as
`Authorization: Bearer <token>`, revoked (then 401); a token never shows up in logs or pages.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.test import Client, RequestFactory
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from accounts.models import ApiToken
from accounts.tokens import (
    authenticate_bearer,
    bearer_credentials,
    create_token,
    revoke_token,
    verify_token,
)
from config.urls import urlpatterns as app_urlpatterns
from generator.models import Task

from .conftest import client_for
from .factories import TaskFactory, UserFactory


@login_not_required
@csrf_exempt
def whoami(request: HttpRequest) -> JsonResponse:
    """Test-only: what authenticate_bearer makes of this request."""
    user = authenticate_bearer(request)
    return JsonResponse({"user": user.get_username() if user else None}, status=200 if user else 401)


urlpatterns = [path("test-whoami/", whoami), *app_urlpatterns]
handler404 = "generator.views.errors.not_found"
pytestmark = pytest.mark.urls(__name__)

TOKEN = re.compile(r"atl_[A-Za-z0-9_-]{43}")


def bearer(plaintext: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {plaintext}"}


def create_on_page(client: Client, name: str = "laptop script") -> str:
    created = client.post(reverse("api_token_create"), {"name": name})
    assert created.status_code == 302 and created["Location"] == reverse("account") + "#new-token-box"
    assert not TOKEN.search(created.content.decode())
    response = client.get(reverse("account"))
    assert response["Cache-Control"].startswith("max-age=0") and "no-store" in response["Cache-Control"]
    found = TOKEN.findall(response.content.decode())
    assert len(found) == 1, "the new token is on the page exactly once"
    return found[0]


def database_text() -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {ApiToken._meta.db_table}")
        return repr(cursor.fetchall())


# Creating


def test_the_account_page_needs_a_signed_in_person(db, client):
    response = client.get(reverse("account"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert client.post(reverse("api_token_create"), {"name": "x"}).status_code == 302
    assert not ApiToken.objects.exists()


def test_a_new_token_is_shown_once_and_stored_hashed(auth_client, user):
    assert "You have no API tokens." in auth_client.get(reverse("account")).content.decode()
    plaintext = create_on_page(auth_client, "laptop script")
    token = ApiToken.objects.get(owner=user)
    assert token.name == "laptop script" and token.prefix == plaintext[:8] and token.is_active
    assert plaintext not in database_text()
    assert token.digest != plaintext and len(token.digest) == 64

    page = auth_client.get(reverse("account")).content.decode()
    assert plaintext not in page and plaintext[4:] not in page
    assert "laptop script" in page and f"{token.prefix}…" in page and "Never" in page


def test_each_token_is_different(auth_client):
    first, second = create_on_page(auth_client, "one"), create_on_page(auth_client, "two")
    assert first != second
    assert ApiToken.objects.count() == 2


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_a_token_needs_a_name_of_at_most_100_characters(auth_client, name):
    response = auth_client.post(reverse("api_token_create"), {"name": name})
    assert response.status_code == 400
    assert 'class="errors"' in response.content.decode()
    assert not TOKEN.search(response.content.decode())
    assert not ApiToken.objects.exists()


def test_creating_needs_a_post_and_a_get_goes_to_the_account_page(auth_client):
    response = auth_client.get(reverse("api_token_create"))
    assert response.status_code == 302 and response["Location"] == reverse("account")
    assert not ApiToken.objects.exists()


def test_reloading_or_switching_language_after_creating_never_makes_a_second_token(auth_client, user):
    plaintext = create_on_page(auth_client, "my script")
    # A reload of the page the browser shows (the account page, after the redirect): no token
    # is made, and the new one is not shown again.
    again = auth_client.get(reverse("account"))
    assert again.status_code == 200 and not TOKEN.search(again.content.decode())
    # The language switcher sends the browser back to where it was with a GET.
    switched = auth_client.post(
        reverse("set_language"), {"language": "zh-hans", "next": reverse("api_token_create")}, follow=True
    )
    assert switched.status_code == 200 and switched.redirect_chain[-1][0] == reverse("account")
    assert plaintext not in switched.content.decode()
    assert ApiToken.objects.filter(owner=user).count() == 1


def test_a_token_revoked_before_its_page_is_seen_is_not_shown(auth_client, user):
    auth_client.post(reverse("api_token_create"), {"name": "oops"})
    ApiToken.objects.get(owner=user).revoke()
    assert not TOKEN.search(auth_client.get(reverse("account")).content.decode())


def test_the_page_shows_only_my_own_tokens(auth_client, other_user):
    create_token(other_user, "someone else's deploy key")
    page = auth_client.get(reverse("account")).content.decode()
    assert "someone else" not in page and "You have no API tokens." in page


# Using


def test_authenticate_bearer_finds_the_tokens_owner(user):
    plaintext = create_token(user, "cli").plaintext
    request = RequestFactory().get("/api/v1/models", **bearer(plaintext))
    assert authenticate_bearer(request) == user


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Bearer not-a-token",
        "Bearer atl_",
        "Bearer atl_" + "A" * 43,  # well-formed, unknown
        "Bearer atl_" + "A" * 44,
        "Bearer atl_" + "!" * 43,
        "Bearer {token} extra",
        "Bearer {token}\x00",
    ],
)
def test_malformed_or_unknown_tokens_authenticate_nobody(user, header):
    plaintext = create_token(user, "cli").plaintext
    request = RequestFactory().get("/", HTTP_AUTHORIZATION=header.format(token=plaintext))
    assert bearer_credentials(request) is not None
    assert authenticate_bearer(request) is None


@pytest.mark.parametrize("header", [None, "Basic dXNlcjpwYXNz", "Token abc"])
def test_requests_without_the_bearer_scheme_are_left_to_the_session(header):
    extra = {} if header is None else {"HTTP_AUTHORIZATION": header}
    request = RequestFactory().get("/", **extra)
    assert bearer_credentials(request) is None
    assert authenticate_bearer(request) is None


def test_the_scheme_is_case_insensitive(user):
    plaintext = create_token(user, "cli").plaintext
    request = RequestFactory().get("/", HTTP_AUTHORIZATION=f"bearer  {plaintext}")
    assert authenticate_bearer(request) == user


def test_an_inactive_persons_token_authenticates_nobody(user):
    plaintext = create_token(user, "cli").plaintext
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert verify_token(plaintext) is None


def test_a_token_works_without_a_session_or_csrf_token(user):
    plaintext = create_token(user, "cli").plaintext
    client = Client(enforce_csrf_checks=True)
    response = client.post("/test-whoami/", **bearer(plaintext))
    assert response.status_code == 200 and response.json() == {"user": user.get_username()}


def test_last_used_is_recorded_at_most_once_a_minute(user, django_assert_num_queries):
    new = create_token(user, "cli")
    request = RequestFactory().get("/", **bearer(new.plaintext))
    assert new.token.last_used_at is None

    authenticate_bearer(request)
    first = ApiToken.objects.get().last_used_at
    assert first is not None and timezone.now() - first < timedelta(seconds=5)

    with django_assert_num_queries(1):  # the lookup only: no write within the minute
        authenticate_bearer(request)
    assert ApiToken.objects.get().last_used_at == first

    ApiToken.objects.update(last_used_at=first - timedelta(minutes=2))
    authenticate_bearer(request)
    assert ApiToken.objects.get().last_used_at > first


def test_the_account_page_shows_when_a_token_was_last_used(auth_client, user):
    new = create_token(user, "cli")
    authenticate_bearer(RequestFactory().get("/", **bearer(new.plaintext)))
    page = auth_client.get(reverse("account")).content.decode()
    row = page[page.index(f'id="token-{new.token.pk}"') :]
    assert "Never" not in row[: row.index("</tr>")]


# Revoking


def test_revoking_asks_first_then_stops_the_token(auth_client, user):
    new = create_token(user, "cli")
    page = auth_client.get(reverse("account")).content.decode()
    assert "<details>" in page and reverse("api_token_revoke", args=[new.token.pk]) in page

    response = auth_client.post(reverse("api_token_revoke", args=[new.token.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("account")
    assert ApiToken.objects.get().revoked_at is not None
    assert verify_token(new.plaintext) is None
    assert Client().post("/test-whoami/", **bearer(new.plaintext)).status_code == 401

    page = auth_client.get(reverse("account")).content.decode()
    assert "Revoked the token “cli”" in page and f'id="token-{new.token.pk}"' not in page


def test_revoking_needs_a_post(auth_client, user):
    token = create_token(user, "cli").token
    assert auth_client.get(reverse("api_token_revoke", args=[token.pk])).status_code == 405
    assert ApiToken.objects.get().is_active


def test_another_persons_token_is_a_404_and_stays_active(auth_client, other_user):
    theirs = create_token(other_user, "theirs")
    response = auth_client.post(reverse("api_token_revoke", args=[theirs.token.pk]))
    assert response.status_code == 404
    assert ApiToken.objects.get().is_active and verify_token(theirs.plaintext) is not None


def test_revoking_twice_is_a_404(auth_client, user):
    token = create_token(user, "cli").token
    assert auth_client.post(reverse("api_token_revoke", args=[token.pk])).status_code == 302
    assert auth_client.post(reverse("api_token_revoke", args=[token.pk])).status_code == 404


# Never seen again


def test_a_token_never_reaches_the_logs(auth_client, user, caplog):
    caplog.set_level(logging.DEBUG)
    plaintext = create_on_page(auth_client)
    Client().get("/test-whoami/", **bearer(plaintext))
    Client().get("/test-whoami/", **bearer(plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")))
    token = ApiToken.objects.get()
    auth_client.post(reverse("api_token_revoke", args=[token.pk]))
    Client().get("/test-whoami/", **bearer(plaintext))
    Client().get("/api/v1/models", **bearer(plaintext))
    assert caplog.records, "the token's life is logged (by id and prefix)"
    assert token.prefix in caplog.text
    assert plaintext not in caplog.text and plaintext[8:] not in caplog.text
    assert not any(plaintext in repr(record.args) for record in caplog.records)


def test_a_token_appears_on_no_page_after_its_creation(auth_client, user):
    user.is_staff = user.is_superuser = True
    user.save(update_fields=["is_staff", "is_superuser"])
    plaintext = create_on_page(auth_client)
    token = ApiToken.objects.get()
    Client().get("/test-whoami/", **bearer(plaintext))
    pages = [
        reverse("account"),
        reverse("generator:create"),
        reverse("generator:history"),
        reverse("generator:gallery"),
        reverse("admin:accounts_apitoken_changelist"),
        reverse("admin:accounts_apitoken_change", args=[token.pk]),
    ]
    for url in pages:
        response = auth_client.get(url)
        assert response.status_code == 200, url
        body = response.content.decode()
        assert plaintext not in body and plaintext[8:] not in body and token.digest not in body, url
    assert token.prefix in auth_client.get(reverse("admin:accounts_apitoken_changelist")).content.decode()


def test_the_admin_cannot_add_or_edit_tokens_but_can_revoke(user):
    staff = UserFactory(is_staff=True, is_superuser=True)
    token = create_token(user, "cli").token
    client = client_for(staff)
    assert client.get(reverse("admin:accounts_apitoken_add")).status_code == 403
    response = client.post(
        reverse("admin:accounts_apitoken_changelist"), {"action": "revoke", "_selected_action": [str(token.pk)]}
    )
    assert response.status_code == 302
    token.refresh_from_db()
    assert not token.is_active


def test_revoke_token_is_idempotent(user):
    token = create_token(user, "cli").token
    revoke_token(token)
    revoked_at = ApiToken.objects.get().revoked_at
    revoke_token(token)
    assert ApiToken.objects.get().revoked_at == revoked_at


# The JSON API, once generator.api authenticates bearer tokens


def test_the_api_answers_a_bearer_token(user):
    task = TaskFactory(owner=user)
    plaintext = create_token(user, "cli").plaintext
    response = Client().get(f"/api/v1/task/{task.pk}", **bearer(plaintext))
    assert response.status_code == 200 and response.json()["task_id"] == str(task.pk)


def test_a_bearer_token_posts_without_csrf(user):
    plaintext = create_token(user, "cli").plaintext
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        "/api/v1/generate", '{"prompt": "a lantern"}', content_type="application/json", **bearer(plaintext)
    )
    assert response.status_code == 201
    assert Task.objects.get().owner == user


def test_the_session_path_still_needs_csrf(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post("/api/v1/generate", '{"prompt": "a lantern"}', content_type="application/json")
    assert response.status_code == 403 and response.json()["error"] == "csrf_failed"
    assert not Task.objects.exists()


def test_a_revoked_token_is_a_401(user):
    new = create_token(user, "cli")
    revoke_token(new.token)
    response = Client().get("/api/v1/models", **bearer(new.plaintext))
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated" and response.json()["message"]


@pytest.mark.parametrize("header", ["Bearer", "Bearer nonsense", "Bearer atl_" + "A" * 43])
def test_a_malformed_or_unknown_token_is_a_401_even_with_a_session(user, header):
    client = client_for(user)  # a valid session must not rescue a bad token
    response = client.get("/api/v1/models", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401 and response.json()["error"] == "not_authenticated"
    response = client.post(
        "/api/v1/generate", '{"prompt": "a"}', content_type="application/json", HTTP_AUTHORIZATION=header
    )
    assert response.status_code == 401 and not Task.objects.exists()


def test_a_token_sees_only_its_owners_tasks(user, other_user):
    mine, theirs = TaskFactory(owner=user), TaskFactory(owner=other_user)
    their_token = create_token(other_user, "theirs").plaintext
    client = Client()
    assert client.get(f"/api/v1/task/{mine.pk}", **bearer(their_token)).status_code == 404
    assert client.get(f"/api/v1/task/{theirs.pk}", **bearer(their_token)).status_code == 200
