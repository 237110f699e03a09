"""Test settings: the real settings, with fast hashing and tasks run inline by default.

Tests that need the real worker start a `qcluster` process against the test database
(see tests/cluster.py); browser tests use pytest-django's live server.
"""

import os
import secrets

# Set before the real settings read them (and inherited by the processes a test starts): tests
# speak plain http with DEBUG at import as before (pytest-django turns it off while a test runs),
# and one throwaway key per run, so nothing reads or writes the per-install key in ~/.config.
os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("SECRET_KEY", "tests-only-" + secrets.token_urlsafe(50))

from config.settings import *  # noqa: E402, F403
from config.settings import BASE_DIR, CACHES, DATABASES, Q_CLUSTER, env  # noqa: E402

# One id per test run, inherited by the qcluster processes a run starts (they copy the
# environment), so two runs on one machine never share a database, a queue or cache keys.
TEST_RUN = os.environ.setdefault("ATELIER_TEST_RUN", str(os.getpid()))

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# {% static %} must not need a collectstatic manifest in tests.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_AUTOREFRESH = True

# async_task runs inline in the test process; a qcluster process started by a test gets
# Q_SYNC=false (tests/cluster.py) and so really works from the queue.
Q_CLUSTER = {**Q_CLUSTER, "sync": env.bool("Q_SYNC", default=True), "name": f"atelier-test-{TEST_RUN}"}
if env.str("REDIS_URL", default=""):  # a shared server: keep this run's keys apart
    CACHES = {alias: {**cache, "KEY_PREFIX": f"test-{TEST_RUN}-{alias}"} for alias, cache in CACHES.items()}

OFFLINE_DELAY_SECONDS = env.float("OFFLINE_DELAY_SECONDS", default=0.0)
PROVIDER_RETRY_BACKOFF_SECONDS = env.float("PROVIDER_RETRY_BACKOFF_SECONDS", default=0.01)

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not :memory:, so a qcluster process and the live server share it.
    (BASE_DIR / "var").mkdir(exist_ok=True)
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / f"test-db-{TEST_RUN}.sqlite3")}
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_atelier_{TEST_RUN}"}
