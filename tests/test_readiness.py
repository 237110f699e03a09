"""/readyz: database, broker, storage and worker, each reported; 200 only when all are ok."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.cache import cache
from django.db import OperationalError

from generator.ops import health

READYZ = "/readyz"
SECRET_IN_ERROR = "password=hunter2 host=db.internal.example"


@pytest.fixture(autouse=True)
def private_cache(settings, tmp_path):
    """The worker check reads django-q2's cluster stats and its own last sighting from the
    default cache: each test gets an empty one (the qcluster fixture uses tmp_path/qcluster/cache)."""
    settings.CACHES = {
        **settings.CACHES,
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path / "qcluster" / "cache"),
        },
    }
    yield
    cache.clear()


@pytest.fixture
def worker_seen():
    """Pretend a cluster reported just now, so only the check under test can fail."""
    cache.set(health.WORKER_SEEN_KEY, time.time(), timeout=60)


@pytest.fixture(autouse=True)
def readyz_token(settings) -> str:
    """The operator's token, which the details below need; and room for the probes these
    tests make (the rate itself is tested in tests/security/test_readyz_exposure.py)."""
    settings.READYZ_TOKEN = "probe-token-for-tests"
    settings.READYZ_RATE = "1000/m"
    return settings.READYZ_TOKEN


def get_readyz(client):
    response = client.get(READYZ, HTTP_AUTHORIZATION="Bearer probe-token-for-tests")
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"] or "no-store" in response["Cache-Control"]
    return response, response.json()


def assert_only_failing(body: dict, *names: str) -> None:
    assert body["status"] == "unavailable"
    assert set(body["checks"]) == {"database", "broker", "storage", "worker", "providers"}
    failing = {name for name, check in body["checks"].items() if not check["ok"]}
    assert failing == set(names)
    for name in names:
        error = body["checks"][name]["error"]
        assert error.startswith(f"{name}:") and len(error) < 200


def assert_no_leaks(response, settings) -> None:
    text = response.content.decode()
    for secret in (settings.SECRET_KEY, SECRET_IN_ERROR, "hunter2", "Traceback", 'File "', str(settings.MEDIA_ROOT)):
        assert secret not in text


def test_the_probes_are_answered_before_anything_else(client, db, settings, worker_seen):
    """HealthMiddleware comes first, so neither host validation, HTTPS redirects nor the
    sign-in requirement stand before /healthz and /readyz; the URLconf does not route them."""
    assert settings.MIDDLEWARE[0] == "generator.ops.health.HealthMiddleware"
    settings.ROOT_URLCONF = "tests.test_readiness"  # no routes at all: the middleware still answers
    assert client.get(READYZ).status_code == 200
    assert client.get("/healthz").json() == {"status": "ok"}


@pytest.mark.cluster
def test_all_checks_pass_with_a_running_cluster_and_a_restart_gap_is_tolerated(start_qcluster, client, settings):
    cluster = start_qcluster()
    deadline = time.monotonic() + 15
    while True:  # the cluster saves its first Stat on its first guard cycle
        response, body = get_readyz(client)
        if response.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert all(check["ok"] for check in body["checks"].values())
    assert body["checks"]["worker"]["clusters"] >= 1 and body["checks"]["worker"]["last_seen"] == 0
    if settings.REDIS_URL:
        assert body["checks"]["broker"]["broker"] == "redis"
    else:
        assert body["checks"]["broker"]["broker"] == "orm" and body["checks"]["broker"]["queued"] == 0
    assert all(isinstance(check["ms"], float) for check in body["checks"].values())

    cluster.stop()  # its Stat expires within 3 s; the last sighting still counts for a minute
    from django_q.status import Stat

    deadline = time.monotonic() + 10
    while Stat.get_all() and time.monotonic() < deadline:
        time.sleep(0.2)
    response, body = get_readyz(client)
    assert response.status_code == 200, body
    assert body["checks"]["worker"]["clusters"] == 0 and body["checks"]["worker"]["last_seen"] > 0


def test_without_a_worker_it_is_unavailable_and_names_the_worker(client, db, settings):
    response, body = get_readyz(client)
    assert response.status_code == 503
    assert_only_failing(body, "worker")
    assert "cluster" in body["checks"]["worker"]["error"]
    assert body["checks"]["worker"]["last_seen"] is None
    assert_no_leaks(response, settings)


@pytest.mark.parametrize(("ago", "ok"), [(30, True), (59, True), (61, False), (3600, False)])
def test_a_recent_sighting_covers_a_short_gap(client, db, ago, ok):
    cache.set(health.WORKER_SEEN_KEY, time.time() - ago, timeout=None)
    response, body = get_readyz(client)
    assert response.status_code == (200 if ok else 503)
    assert body["checks"]["worker"]["ok"] is ok
    assert ago <= body["checks"]["worker"]["last_seen"] < ago + 5


def test_a_live_cluster_stat_is_a_worker_and_is_remembered(client, db, monkeypatch):
    from django_q.conf import Conf
    from django_q.status import Stat

    class FakeStat:
        status = Conf.IDLE

    monkeypatch.setattr(Stat, "get_all", staticmethod(lambda broker=None: [FakeStat()]))
    response, body = get_readyz(client)
    assert response.status_code == 200 and body["checks"]["worker"] == {
        **body["checks"]["worker"],
        "clusters": 1,
        "ok": True,
    }
    assert time.time() - cache.get(health.WORKER_SEEN_KEY) < 5


def test_a_stopped_cluster_does_not_count(client, db, monkeypatch):
    from django_q.conf import Conf
    from django_q.status import Stat

    class StoppedStat:
        status = Conf.STOPPED

    monkeypatch.setattr(Stat, "get_all", staticmethod(lambda broker=None: [StoppedStat()]))
    response, body = get_readyz(client)
    assert response.status_code == 503 and not body["checks"]["worker"]["ok"]


def test_unwritable_storage_is_unavailable_and_names_storage(client, db, settings, tmp_path, worker_seen):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the media directory should be")
    settings.MEDIA_ROOT = blocker
    response, body = get_readyz(client)
    assert response.status_code == 503
    assert_only_failing(body, "storage")
    assert_no_leaks(response, settings)


def test_the_storage_probe_leaves_nothing_behind(client, db, media_root, worker_seen):
    response, _ = get_readyz(client)
    assert response.status_code == 200
    probes = list((media_root / "readiness").glob("*")) if (media_root / "readiness").exists() else []
    assert probes == []


def test_a_database_error_is_unavailable_and_names_the_database(client, db, settings, monkeypatch, worker_seen):
    class BrokenConnection:
        vendor = "postgresql"

        def cursor(self):
            raise OperationalError(f"could not connect to server: {SECRET_IN_ERROR}")

    monkeypatch.setattr(health, "connection", BrokenConnection())
    response, body = get_readyz(client)
    assert response.status_code == 503
    assert_only_failing(body, "database")
    assert body["checks"]["database"]["error"] == "database: OperationalError"
    assert_no_leaks(response, settings)


def test_a_broker_error_is_unavailable_and_names_the_broker(client, db, settings, monkeypatch, worker_seen):
    from django_q.brokers import get_broker

    def broken(self):
        raise OperationalError(SECRET_IN_ERROR)

    broker_class = type(get_broker())
    # Whichever broker is configured: the ORM one is asked for its queue size, Redis pinged.
    monkeypatch.setattr(broker_class, "queue_size", broken)
    monkeypatch.setattr(broker_class, "ping", broken)
    response, body = get_readyz(client)
    assert response.status_code == 503
    assert_only_failing(body, "broker")
    assert_no_leaks(response, settings)


def test_a_broker_that_does_not_answer_its_ping_is_unavailable(client, db, monkeypatch, worker_seen):
    import django_q.brokers
    from django_q.brokers import Broker

    class SilentBroker(Broker):
        def ping(self) -> bool:
            return False

    monkeypatch.setattr(django_q.brokers, "get_broker", lambda list_key=None: SilentBroker(list_key="atelier"))
    response, body = get_readyz(client)
    assert response.status_code == 503
    assert_only_failing(body, "broker")
    assert "ping" in body["checks"]["broker"]["error"]


@pytest.mark.parametrize("name", ["database", "broker", "storage", "worker"])
def test_any_exception_in_a_check_is_that_check_failing_never_a_500(
    client, db, settings, monkeypatch, worker_seen, name
):
    def explode() -> dict:
        raise RuntimeError(SECRET_IN_ERROR)

    monkeypatch.setitem(health.CHECKS, name, explode)
    response, body = get_readyz(client)
    assert response.status_code == 503
    assert_only_failing(body, name)
    assert body["checks"][name]["error"] == f"{name}: RuntimeError"
    assert_no_leaks(response, settings)


def test_it_needs_no_sign_in_and_ignores_htmx(client, db, worker_seen):
    for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
        response = client.get(READYZ, **headers)
        assert response.status_code == 200
        assert response.json()["status"] == "ok"


def test_internal_probes_get_an_answer_whatever_the_host_and_scheme(client, db, settings, worker_seen):
    """Like /healthz: an orchestrator probes the pod's own address over plain HTTP. A 400 for
    the host or a 301 to HTTPS (which Kubernetes counts as success) would hide the truth."""
    settings.ALLOWED_HOSTS = ["atelier.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    response = client.get(READYZ, HTTP_HOST="10.0.0.7:8000")
    assert response.status_code == 200, response.status_code
    assert response.json()["status"] == "ok"


def test_only_safe_methods(client, db, worker_seen):
    assert client.head(READYZ).status_code == 200
    assert client.post(READYZ).status_code == 405


# --- refusing to start ------------------------------------------------------------------

BASE_DIR = Path(__file__).resolve().parent.parent
PROVIDER_PREFIXES = ("VOLCENGINE_", "OPENAI_", "ARK_", "SILICONFLOW_", "DASHSCOPE_", "AUTOMATIC1111_")


def import_wsgi(**env: str) -> subprocess.CompletedProcess:
    """Import config.asgi (what gunicorn does) in a fresh interpreter with this environment."""
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(PROVIDER_PREFIXES) and key not in ("DEBUG", "SECRET_KEY", "WEB_CONCURRENCY", "REDIS_URL")
    }
    # tests.settings: the real settings without a local .env (and nothing connects to a database).
    clean.update({"DJANGO_SETTINGS_MODULE": "tests.settings", **env})
    return subprocess.run(
        [sys.executable, "-c", "import config.asgi; print('started')"],
        cwd=BASE_DIR,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.subprocess
@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"VOLCENGINE_SECRET_KEY": "x-volc-secret-value"}, "VOLCENGINE_ACCESS_KEY"),
        ({"OPENAI_BASE_URL": "https://llm.example/v1"}, "OPENAI_API_KEY"),
        ({"AUTOMATIC1111_BASE_URL": "http://gpu:7860", "AUTOMATIC1111_USERNAME": "painter"}, "AUTOMATIC1111_PASSWORD"),
        ({"DEBUG": "false", "SECRET_KEY": "a-production-secret"}, "SECRET_KEY"),
    ],
    ids=["volcengine-half", "openai-no-key", "a1111-user-no-password", "production-weak-secret-key"],
)
def test_the_app_refuses_to_start_half_configured(env, named):
    result = import_wsgi(**env)
    assert result.returncode != 0
    assert "started" not in result.stdout
    assert "ImproperlyConfigured" in result.stderr and named in result.stderr, result.stderr[-2000:]
    assert "x-volc-secret-value" not in result.stderr  # names the variables, never their values


@pytest.mark.subprocess
@pytest.mark.parametrize(
    "env",
    [{}, {"DEBUG": "false", "SECRET_KEY": "a-production-secret-" * 3, "ALLOWED_HOSTS": "atelier.example"}],
    ids=["defaults", "production"],
)
def test_the_app_starts_when_configured(env):
    result = import_wsgi(**env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "started"


@pytest.mark.subprocess
def test_the_app_starts_with_a_fully_configured_provider():
    result = import_wsgi(VOLCENGINE_ACCESS_KEY="ak", VOLCENGINE_SECRET_KEY="sk")
    assert result.returncode == 0, result.stderr[-2000:]


urlpatterns: list = []  # test_the_probes_are_answered_before_anything_else
