"""Audit finding 1: /admin/login/ is behind the same sign-in limits as /accounts/login/, with
one set of counters for both forms."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import PASSWORD, UserFactory

ADMIN_LOGIN = "/admin/login/"
# Every rate window here stays open for the whole test (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("ratelimit_clock")


@pytest.fixture
def staff(db):
    return UserFactory(is_staff=True, is_superuser=True)


def admin_attempt(client: Client, username: str, password: str, **data: str):
    return client.post(ADMIN_LOGIN, {"username": username, "password": password, **data})


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_the_sixth_bad_admin_attempt_is_429_and_the_right_password_then_fails(client, staff):
    codes = [admin_attempt(client, staff.username, f"wrong{i}").status_code for i in range(5)]
    assert codes == [200] * 5
    refused = admin_attempt(client, staff.username, "wrong5")
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert "Too many sign-in attempts" in refused.content.decode()
    assert 'id="login-form"' in refused.content.decode()  # the admin's own form, to try again later
    right = admin_attempt(client, staff.username, PASSWORD)
    assert right.status_code == 429
    assert not signed_in(client)


def test_the_admin_and_the_site_share_the_counters(client, staff):
    for i in range(3):
        assert client.post(reverse("login"), {"username": staff.username, "password": f"w{i}"}).status_code == 200
    for i in range(2):
        assert admin_attempt(client, staff.username, f"x{i}").status_code == 200
    assert admin_attempt(client, staff.username, PASSWORD).status_code == 429
    assert client.post(reverse("login"), {"username": staff.username, "password": PASSWORD}).status_code == 429


def test_the_admin_counts_the_per_address_limit_too(client, db, settings):
    settings.LOGIN_RATE_PER_IP = "4/m"
    codes = [admin_attempt(client, f"guess{i}", "x").status_code for i in range(5)]
    assert codes == [200, 200, 200, 200, 429]


def test_staff_still_sign_in_to_the_admin_and_next_is_kept(client, staff):
    target = reverse("admin:auth_user_changelist")
    page = client.get(f"{ADMIN_LOGIN}?next={target}")
    assert page.status_code == 200 and f'value="{target}"' in page.content.decode()
    response = client.post(
        f"{ADMIN_LOGIN}?next={target}", {"username": staff.username, "password": PASSWORD, "next": target}
    )
    assert response.status_code == 302 and response["Location"] == target
    assert client.get(target).status_code == 200


def test_a_signed_in_admin_is_sent_on_and_people_who_are_not_staff_stay_out(client, staff):
    person = UserFactory()
    response = admin_attempt(client, person.username, PASSWORD)
    assert response.status_code == 200 and not signed_in(client)
    assert admin_attempt(client, staff.username, PASSWORD).status_code == 302
    assert client.get(ADMIN_LOGIN).status_code == 302  # AdminSite.login: already in, to the index
