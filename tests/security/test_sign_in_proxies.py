"""Audit finding 2: per-address limits count the client a trusted proxy reports, and never an
address an untrusted client writes in X-Forwarded-For (TRUSTED_PROXIES, default: nobody)."""

from __future__ import annotations

import pytest
from django.core import checks
from django.test import RequestFactory
from django.urls import reverse

from accounts.addresses import client_address

pytestmark = pytest.mark.usefixtures("ratelimit_clock")

PROXY = "10.0.0.2"


def attempt(client, n: int, *, remote: str, forwarded: str | None = None):
    headers = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded
    return client.post(reverse("login"), {"username": f"guess{n}", "password": "x"}, **headers)


def address_of(remote: str, forwarded: str | None = None) -> str:
    headers = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded
    return client_address(RequestFactory().get("/", **headers))


def test_behind_a_trusted_proxy_each_client_has_its_own_counter(client, db, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    settings.LOGIN_RATE_PER_IP = "3/m"
    first = [attempt(client, n, remote=PROXY, forwarded="198.51.100.1").status_code for n in range(4)]
    assert first == [200, 200, 200, 429]
    # Another visitor through the same proxy is not locked out by the first.
    assert attempt(client, 9, remote=PROXY, forwarded="198.51.100.2").status_code == 200


def test_a_spoofed_header_from_an_untrusted_address_does_not_split_the_counter(client, db, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    settings.LOGIN_RATE_PER_IP = "3/m"
    codes = [attempt(client, n, remote="203.0.113.9", forwarded=f"198.51.100.{n}").status_code for n in range(5)]
    assert codes == [200, 200, 200, 429, 429]


def test_what_the_client_wrote_left_of_the_proxys_entry_does_not_split_the_counter(client, db, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    settings.LOGIN_RATE_PER_IP = "3/m"
    codes = [attempt(client, n, remote=PROXY, forwarded=f"192.0.2.{n}, 198.51.100.1").status_code for n in range(5)]
    assert codes == [200, 200, 200, 429, 429]


def test_by_default_no_proxy_is_trusted(client, db, settings):
    settings.TRUSTED_PROXIES = []
    settings.LOGIN_RATE_PER_IP = "3/m"
    codes = [attempt(client, n, remote="127.0.0.1", forwarded=f"198.51.100.{n}").status_code for n in range(4)]
    assert codes == [200, 200, 200, 429]


@pytest.mark.parametrize(
    ("remote", "forwarded", "expected"),
    [
        ("10.0.0.2", None, "10.0.0.2"),  # from the proxy itself (a health check, say)
        ("10.0.0.2", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.2", "198.51.100.1, 10.0.0.7", "198.51.100.1"),  # two trusted hops
        ("10.0.0.2", "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # the client's own entry is ignored
        ("10.0.0.2", "198.51.100.1:51234", "198.51.100.1"),
        ("10.0.0.2", "[2001:db8::7]:443", "2001:db8::7"),
        ("10.0.0.2", "::ffff:198.51.100.1", "198.51.100.1"),
        ("10.0.0.2", "6.6.6.6, not-an-address", "10.0.0.2"),  # garbage: the nearest trusted hop
        ("10.0.0.2", "10.0.0.9", "10.0.0.9"),  # only trusted hops: the farthest one
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),  # not a trusted proxy: header ignored
        ("::1", "198.51.100.1", "::1"),
        ("", "198.51.100.1", "198.51.100.1"),  # a Unix-socket peer: the local proxy
        ("", None, "127.0.0.1"),  # ... which, without the header, is everyone's bucket
    ],
)
def test_client_address(settings, remote, forwarded, expected):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert address_of(remote, forwarded) == expected


def test_a_bad_trusted_proxies_entry_is_a_system_check_error(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8", "proxy.example"]
    errors = [message for message in checks.run_checks() if message.id == "accounts.E001"]
    assert len(errors) == 1 and "TRUSTED_PROXIES" in errors[0].msg
    settings.TRUSTED_PROXIES = ["10.0.0.0/8", "2001:db8::/32", "192.0.2.1"]
    assert not [message for message in checks.run_checks() if message.id == "accounts.E001"]
