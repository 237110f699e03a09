from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import Client

from generator import catalogue, providers
from generator.models import Task
from generator.scheduler.inline import run_task

from .cluster import qcluster, start_qcluster  # noqa: F401  (fixtures for every test module)
from .factories import TaskFactory, UserFactory
from .fakes import ScriptedProvider
from .marks import require_mark


@pytest.fixture(scope="session", autouse=True)
def close_asgirefs_shared_thread_connection(django_db_setup):
    """asgiref runs thread-sensitive calls made outside a request's context (an async view's
    sign-in lookup under AsyncClient, the gateway's) on one thread that lives as long as the
    process: its kept connection would stop PostgreSQL from dropping the test database."""
    yield
    asyncio.run(sync_to_async(connections.close_all, thread_sensitive=True)())


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture(autouse=True)
def fresh_providers():
    providers.reset_cache()
    catalogue.forget()
    yield
    providers.reset_cache()
    catalogue.forget()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def other_user(db):
    return UserFactory()


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def auth_client(user) -> Client:
    return client_for(user)


@pytest.fixture
def other_client(other_user) -> Client:
    return client_for(other_user)


@pytest.fixture
def completed_task(user) -> Task:
    task = TaskFactory(owner=user, num_images=2)
    run_task(str(task.pk))
    task.refresh_from_db()
    assert task.status == Task.Status.COMPLETED
    return task


@pytest.fixture
def scripted(settings):
    """The scripted provider (tests/fakes.py), enabled: set `.script` to what it should do."""
    settings.EXTRA_PROVIDERS = {"scripted": "tests.fakes.ScriptedProvider"}
    ScriptedProvider.script = []
    ScriptedProvider.calls = 0
    ScriptedProvider.listing = None
    return ScriptedProvider


@pytest.fixture
def configure_provider(settings):
    """configure_provider("volcengine", ACCESS_KEY="ak", ...) -> the enabled provider instance.

    Values replace that provider's defaults from config/settings.py, as if the variables were
    set in the environment.
    """

    def configure(name: str, **values):
        config = dict(settings.PROVIDER_CONFIG[name])
        config.update(values)
        config["SET"] = sorted(set(config.get("SET", ())) | set(values))
        settings.PROVIDER_CONFIG = {**settings.PROVIDER_CONFIG, name: config}
        return providers.get_provider(name)

    return configure


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    """Rate-limit counters live in a cache that outlives each test's database rollback."""
    from django.core.cache import caches

    caches["ratelimit"].clear()
    yield
    caches["ratelimit"].clear()


class RateLimitClock:
    """django-ratelimit's clock, stopped (see the `ratelimit_clock` fixture)."""

    START = 1_900_000_000  # any fixed second will do

    def __init__(self) -> None:
        self.now = self.START

    def time(self) -> float:  # stands in for the `time` module inside django_ratelimit.core
        return float(self.now)

    def stop_before_window_end(self, value: str, period: int, seconds: int) -> None:
        """Stop the clock `seconds` before the end of the rate window that `value` (the key
        the limit counts by, e.g. str(user.pk)) is in, whatever the window's jitter."""
        from django_ratelimit.core import _get_window

        for offset in range(period):
            self.now = self.START + offset
            if _get_window(value, period) - self.now == seconds:
                return
        raise AssertionError(f"no second is {seconds} s before the end of a {period} s window")


@pytest.fixture
def ratelimit_clock(monkeypatch) -> RateLimitClock:
    """Rate-limit windows that never end during the test (the clock stands still), and a way to
    place the clock at a chosen distance from a window's end."""
    import django_ratelimit.core

    clock = RateLimitClock()
    monkeypatch.setattr(django_ratelimit.core, "time", clock)
    return clock


@pytest.fixture
def s3_endpoint(request, moto_server) -> str:
    """The URL of a real S3-compatible server (moto's server mode); only for tests marked s3."""
    require_mark(request, "s3")
    return moto_server


@pytest.fixture(scope="session")
def moto_server():
    """moto's server mode on 127.0.0.1, started once for the run: use `s3_endpoint`."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
