"""Audit finding 3: the per-username sign-in counters key on the username as the sign-in form
cleans it (stripped, NFKC), case-folded: variants of a locked name are locked too."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.limits import normalize_username
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.usefixtures("ratelimit_clock")

VARIANTS = [" carol", "carol ", "\tcarol", "ｃａｒｏｌ", "carol\u3000", "CAROL", "Ｃarol"]


def attempt(client, username: str, password: str = "wrong", address: str = "192.0.2.1"):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address)


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_key_is_the_cleaned_username(variant):
    assert normalize_username(variant) == "carol"


def test_variants_of_a_locked_username_are_locked_too(client, db):
    UserFactory(username="carol")
    assert [attempt(client, "carol").status_code for _ in range(5)] == [200] * 5
    for variant in VARIANTS:
        assert attempt(client, variant).status_code == 429, repr(variant)
        assert attempt(client, variant, PASSWORD).status_code == 429, repr(variant)
    assert attempt(client, "carol", PASSWORD).status_code == 429
    assert "_auth_user_id" not in client.session


def test_variants_from_many_addresses_fill_one_username_ceiling(client, db, settings):
    settings.LOGIN_RATE_PER_USERNAME = "5/m"
    UserFactory(username="carol")
    codes = [attempt(client, variant, address=f"198.51.100.{i}").status_code for i, variant in enumerate(VARIANTS)]
    assert codes == [200] * 5 + [429] * (len(VARIANTS) - 5)
    assert attempt(client, "carol", PASSWORD, address="203.0.113.50").status_code == 429


def test_a_cleaned_variant_still_signs_in_when_nothing_is_locked(client, db):
    UserFactory(username="carol")
    assert attempt(client, " carol ", PASSWORD).status_code == 302  # the form strips, as before
