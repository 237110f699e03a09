"""Test settings: the real settings, with fast hashing and tasks run inline by default.

Tests that need the real worker start a `qcluster` process against the test database
(see tests/cluster.py); browser tests use pytest-django's live server.
"""

from config.settings import *  # noqa: F403
from config.settings import BASE_DIR, DATABASES, Q_CLUSTER

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# {% static %} must not need a collectstatic manifest in tests.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_AUTOREFRESH = True

# async_task runs inline unless a test turns it off (tests/cluster.py does).
Q_CLUSTER = {**Q_CLUSTER, "sync": True}

OFFLINE_DELAY_SECONDS = 0.0
PROVIDER_RETRY_BACKOFF_SECONDS = 0.01

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not :memory:, so a qcluster process and the live server share it.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / "test-db.sqlite3")}
