"""Audit note "targeted lockout": a per-(username, address) counter stops one stranger, so the
person still signs in from elsewhere; a higher per-username ceiling still stops many addresses."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.usefixtures("ratelimit_clock")


@pytest.fixture
def carol(db, settings):
    # The documented defaults (config/settings.py, .env.example), set here so an environment cannot change them.
    settings.LOGIN_RATE_PER_IP = "20/m"
    settings.LOGIN_RATE_PER_USERNAME_AND_IP = "5/m"
    settings.LOGIN_RATE_PER_USERNAME = "20/m"
    return UserFactory(username="carol")


def attempt(client, address: str, password: str = "wrong"):
    return client.post(reverse("login"), {"username": "carol", "password": password}, REMOTE_ADDR=address)


def test_a_stranger_cannot_lock_carol_out_from_another_address(client, carol):
    stranger = "203.0.113.66"
    assert [attempt(client, stranger).status_code for _ in range(5)] == [200] * 5
    # The stranger keeps trying: refused, and those refusals do not fill carol's own ceiling.
    assert {attempt(client, stranger).status_code for _ in range(15)} == {429}
    assert attempt(client, stranger, PASSWORD).status_code == 429
    assert attempt(client, "198.51.100.7", PASSWORD).status_code == 302


def test_the_per_username_ceiling_still_stops_a_distributed_attack(client, carol):
    addresses = [f"203.0.113.{n}" for n in range(4)]
    codes = [attempt(client, address).status_code for address in addresses for _ in range(5)]
    assert codes == [200] * 20
    assert attempt(client, "203.0.113.200").status_code == 429
    assert attempt(client, "198.51.100.7", PASSWORD).status_code == 429  # inherent: the name is under attack
