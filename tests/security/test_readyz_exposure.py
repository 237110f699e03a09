"""/readyz answers anyone with a status, but its details (database vendor, broker, queue,
worker timings) only a caller with READYZ_TOKEN; it is throttled per address and does not
write to storage on every call (security review, finding 12)."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.urls import reverse

from generator.ops import health

from ..factories import UserFactory

READYZ = "/readyz"
TOKEN = "a-long-random-token-for-the-probes"


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def worker_seen():
    cache.set(health.WORKER_SEEN_KEY, 10**12, timeout=60)  # a sighting "in the future": always recent


def test_anonymous_callers_get_the_status_without_details(client, db, settings, worker_seen):
    settings.READYZ_TOKEN = TOKEN
    body = client.get(READYZ).json()
    assert body == {"status": "ok"}
    assert "sqlite" not in client.get(READYZ).content.decode() and "vendor" not in body


def test_the_token_shows_every_check(client, db, settings, worker_seen):
    settings.READYZ_TOKEN = TOKEN
    body = client.get(READYZ, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").json()
    assert set(body["checks"]) == {"database", "broker", "storage", "worker", "providers"}
    wrong = client.get(READYZ, HTTP_AUTHORIZATION=f"Bearer {TOKEN}x").json()
    assert "checks" not in wrong


def test_without_a_configured_token_nobody_sees_details(client, db, settings, worker_seen):
    settings.READYZ_TOKEN = ""
    assert "checks" not in client.get(READYZ, HTTP_AUTHORIZATION="Bearer ").json()


def test_probes_are_throttled_per_address(client, db, settings, worker_seen, ratelimit_clock):
    settings.READYZ_RATE = "3/m"
    answers = [client.get(READYZ).status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    assert client.get(READYZ, REMOTE_ADDR="10.0.0.9").status_code == 200  # another address


def test_the_storage_probe_runs_once_within_its_cache_time(client, db, settings, worker_seen, monkeypatch):
    writes = []
    save = default_storage.save
    monkeypatch.setattr(default_storage, "save", lambda *args, **kwargs: writes.append(args) or save(*args, **kwargs))
    for _ in range(5):
        assert client.get(READYZ).status_code == 200
    assert len(writes) == 1


def test_staff_see_every_check_on_the_operations_overview(client, db, worker_seen):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = client.get(reverse("admin:generator_overview")).content.decode()
    assert 'id="overview-readiness"' in page
    for label in ("Database", "Broker", "Media storage", "Worker"):
        assert f'<th scope="row">{label}</th>' in page
