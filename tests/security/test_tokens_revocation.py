"""Audit note "tokens survive a password change": a person revokes all their API tokens at once
(on the password page and the account page), and staff deactivating someone revokes theirs."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import RequestFactory
from django.urls import reverse

from accounts.models import ApiToken
from accounts.tokens import authenticate_bearer, create_token
from tests.factories import UserFactory

REVOKE_ALL = "Revoke all my API tokens"


def works(plaintext: str) -> bool:
    request = RequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return authenticate_bearer(request) is not None


def test_the_password_page_offers_to_revoke_all_tokens(auth_client, user):
    assert REVOKE_ALL not in auth_client.get(reverse("password_change")).content.decode()  # none yet
    first, second = create_token(user, "laptop"), create_token(user, "server")
    page = auth_client.get(reverse("password_change")).content.decode()
    assert REVOKE_ALL in page and "You have 2 API tokens" in page
    response = auth_client.post(reverse("api_token_revoke_all"), {"next": reverse("password_change")})
    assert response.status_code == 302 and response["Location"] == reverse("password_change")
    assert not works(first.plaintext) and not works(second.plaintext)
    after = auth_client.get(reverse("password_change")).content.decode()
    assert "Revoked 2 API tokens." in after and REVOKE_ALL not in after


def test_the_account_page_revokes_all_my_tokens_and_only_mine(auth_client, user, other_user):
    mine, theirs = create_token(user, "laptop"), create_token(other_user, "theirs")
    assert REVOKE_ALL in auth_client.get(reverse("account")).content.decode()
    response = auth_client.post(reverse("api_token_revoke_all"))
    assert response.status_code == 302 and response["Location"] == reverse("account")
    assert not works(mine.plaintext) and works(theirs.plaintext)
    assert "You have no API tokens." in auth_client.get(reverse("account")).content.decode()


def test_revoking_all_needs_a_post_and_never_goes_off_site(auth_client, user):
    token = create_token(user, "laptop")
    assert auth_client.get(reverse("api_token_revoke_all")).status_code == 405
    assert works(token.plaintext)
    response = auth_client.post(reverse("api_token_revoke_all"), {"next": "https://evil.example/"})
    assert response["Location"] == reverse("account")


def test_deactivating_a_person_revokes_their_tokens_for_good(user):
    token = create_token(user, "laptop")
    user.is_active = False
    user.save()  # what the admin's change page does
    assert ApiToken.objects.get(pk=token.token.pk).revoked_at is not None
    user.is_active = True
    user.save()
    assert not works(token.plaintext)  # activating again does not bring the token back


def test_deactivating_through_the_admin_revokes_their_tokens(admin_client, user):
    token = create_token(user, "laptop")
    change = reverse("admin:auth_user_change", args=[user.pk])
    page = admin_client.get(change).context
    form = page["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name != "password"}
    for inline in page["inline_admin_formsets"]:  # e.g. the person's quotas: left as they are
        management = inline.formset.management_form
        data |= {management.add_prefix(name): value for name, value in management.initial.items()}
    data |= {"is_active": "", "last_login_0": "", "last_login_1": "", "date_joined_0": "2026-01-01"}
    data |= {"date_joined_1": "00:00:00", "groups": [], "user_permissions": []}
    data.pop("last_login", None), data.pop("date_joined", None)
    response = admin_client.post(change, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert not User.objects.get(pk=user.pk).is_active
    assert not works(token.plaintext)
    assert ApiToken.objects.get(pk=token.token.pk).revoked_at is not None


@pytest.mark.parametrize("fields", [None, ["is_active"]])
def test_saving_an_inactive_person_revokes_and_other_saves_cost_no_query(user, fields, django_assert_num_queries):
    token = create_token(user, "laptop")
    with django_assert_num_queries(1):  # only the user's own UPDATE
        user.save(update_fields=["last_login"])
    user.is_active = False
    user.save(update_fields=fields)
    assert not works(token.plaintext)


def test_a_new_inactive_account_costs_no_revocation(db, django_assert_num_queries):
    with django_assert_num_queries(1):
        UserFactory.build(is_active=False).save()
