"""Finding 6 and the hardening notes: safe defaults in the settings and gunicorn's config.

DEBUG is off unless asked for, there is no public SECRET_KEY (a per-install key is generated
0600 outside the repository), weak keys are refused in production, gunicorn binds loopback and
shares no control socket, and stored images are not readable by other local users.
"""

from __future__ import annotations

import os
import runpy
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from gunicorn.config import Config

from generator.models import Task
from generator.scheduler.inline import run_task
from tests.factories import TaskFactory

ROOT = Path(__file__).resolve().parent.parent.parent
STRONG_KEY = "k3Yq9Z-w" * 8  # 64 characters, 8 different
# What the settings read; the test settings set DEBUG and SECRET_KEY for the suite itself.
ENV_SETTINGS = ("DEBUG", "SECRET_KEY", "SECRET_KEY_FILE", "XDG_CONFIG_HOME", "HTTPS", "DJANGO_SETTINGS_MODULE")


def real_settings(tmp_path: Path, expression: str, **env: str) -> subprocess.CompletedProcess:
    """Evaluate an expression over config.settings in a fresh interpreter: the real settings,
    no local .env (cwd is a scratch folder), HOME and the config folder inside tmp_path."""
    clean = {key: value for key, value in os.environ.items() if key not in ENV_SETTINGS}
    clean.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        HOME=str(tmp_path / "home"),
        PYTHONPATH=str(ROOT),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        **env,
    )
    code = f"import django; django.setup(); from django.conf import settings; print({expression})"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=clean, capture_output=True, text=True, timeout=60
    )


# --- DEBUG -------------------------------------------------------------------------------


@pytest.mark.subprocess
def test_debug_is_off_unless_asked_for(tmp_path):
    assert real_settings(tmp_path, "settings.DEBUG", SECRET_KEY=STRONG_KEY).stdout.strip() == "False"
    assert real_settings(tmp_path, "settings.DEBUG", DEBUG="true").stdout.strip() == "True"


@pytest.mark.subprocess
def test_plain_http_on_this_machine_drops_the_https_redirect_and_secure_cookies(tmp_path):
    expression = "settings.SECURE_SSL_REDIRECT, settings.SESSION_COOKIE_SECURE, settings.SECURE_HSTS_SECONDS"
    assert real_settings(tmp_path, expression, SECRET_KEY=STRONG_KEY).stdout.strip() == "True True 31536000"
    local = real_settings(tmp_path, expression, SECRET_KEY=STRONG_KEY, HTTPS="false")
    assert local.stdout.strip() == "False False 0", local.stderr


# --- SECRET_KEY --------------------------------------------------------------------------


@pytest.mark.subprocess
def test_without_secret_key_a_per_install_key_is_generated_0600_and_reused(tmp_path):
    config = tmp_path / "config"
    first = real_settings(tmp_path, "settings.SECRET_KEY", XDG_CONFIG_HOME=str(config))
    assert first.returncode == 0, first.stderr
    key_file = config / "atelier" / "secret_key"
    assert "generated a new SECRET_KEY" in first.stderr and str(key_file) in first.stderr
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    key = first.stdout.strip()
    assert len(key) >= 50 and key == key_file.read_text().strip()
    # Reused: the web server, the worker and the next start all read the same key.
    again = real_settings(tmp_path, "settings.SECRET_KEY", XDG_CONFIG_HOME=str(config))
    assert again.stdout.strip() == key and "generated" not in again.stderr
    # Outside the repository: nothing was written beside manage.py.
    assert not [path for path in ROOT.rglob("secret_key") if ".venv" not in path.parts]


@pytest.mark.subprocess
def test_the_default_key_file_is_in_the_users_config_folder(tmp_path):
    result = real_settings(tmp_path, "settings.SECRET_KEY")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "home" / ".config" / "atelier" / "secret_key").read_text().strip() == result.stdout.strip()


@pytest.mark.subprocess
def test_secret_key_file_names_another_place_and_an_environment_key_wins(tmp_path):
    key_file = tmp_path / "keys" / "atelier.key"
    from_file = real_settings(tmp_path, "settings.SECRET_KEY", SECRET_KEY_FILE=str(key_file))
    assert from_file.stdout.strip() == key_file.read_text().strip()
    given = real_settings(tmp_path, "settings.SECRET_KEY", SECRET_KEY_FILE=str(key_file), SECRET_KEY=STRONG_KEY)
    assert given.stdout.strip() == STRONG_KEY


@pytest.mark.subprocess
@pytest.mark.parametrize("place", ["under-a-file", "unwritable"])
def test_an_unusable_key_place_is_a_clear_error(tmp_path, place):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    # /proc refuses new folders even to root (whom file modes do not stop).
    path = blocker / "secret_key" if place == "under-a-file" else Path("/proc/atelier-test/secret_key")
    result = real_settings(tmp_path, "settings.SECRET_KEY", SECRET_KEY_FILE=str(path))
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "set SECRET_KEY, or SECRET_KEY_FILE" in result.stderr


@pytest.mark.subprocess
@pytest.mark.parametrize(
    "weak",
    ["x", "a-production-secret", "s" * 49 + "!", "abcd" * 20, "django-insecure-" + "q7Zp" * 12],
    ids=["one-character", "short", "49-characters", "4-different", "django-insecure"],
)
def test_a_weak_key_is_refused_when_debug_is_off(tmp_path, weak):
    result = real_settings(tmp_path, "settings.SECRET_KEY", DEBUG="false", SECRET_KEY=weak)
    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY is too weak for DEBUG=false" in result.stderr, result.stderr[-1500:]
    if len(weak) > 1:  # (one letter is in any message)
        assert weak not in result.stderr  # the message never repeats the value


@pytest.mark.subprocess
def test_a_strong_key_is_accepted_and_a_short_one_still_works_with_debug(tmp_path):
    assert real_settings(tmp_path, "len(settings.SECRET_KEY)", DEBUG="false", SECRET_KEY=STRONG_KEY).stdout.strip() == (
        "64"
    )
    assert real_settings(tmp_path, "settings.SECRET_KEY", DEBUG="true", SECRET_KEY="dev").stdout.strip() == "dev"


def test_no_public_default_key_remains():
    source = (ROOT / "config" / "settings.py").read_text()
    assert "django-insecure-atelier" not in source
    assert 'env.str(\n    "SECRET_KEY",\n    default=' not in source


def test_concurrent_first_starts_agree_on_one_key(tmp_path):
    from config.settings import per_install_secret_key

    path = tmp_path / "atelier" / "secret_key"
    keys: list[str] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        keys.append(per_install_secret_key(path))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8 and len(set(keys)) == 1
    assert [p.name for p in path.parent.iterdir()] == ["secret_key"]  # no temporary files left


# --- gunicorn ----------------------------------------------------------------------------


def gunicorn_config(monkeypatch, **env: str) -> Config:
    """config/gunicorn.conf.py as gunicorn applies it (an unknown name would be ignored there,
    so each value is set through gunicorn's own Config, which refuses unknown ones)."""
    for name in ("BIND", "PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = Config()
    for name, value in runpy.run_path(str(ROOT / "config" / "gunicorn.conf.py")).items():
        if not name.startswith("_") and not callable(value) and name != "os":
            config.set(name, value)
    return config


def test_gunicorn_binds_loopback_unless_told(monkeypatch):
    assert gunicorn_config(monkeypatch).bind == ["127.0.0.1:8000"]
    assert gunicorn_config(monkeypatch, PORT="8131").bind == ["127.0.0.1:8131"]
    assert gunicorn_config(monkeypatch, BIND="0.0.0.0").bind == ["0.0.0.0:8000"]
    assert gunicorn_config(monkeypatch, BIND="[::]", PORT="9000").bind == ["[::]:9000"]
    assert gunicorn_config(monkeypatch, BIND="10.0.0.5:7000").bind == ["10.0.0.5:7000"]
    assert gunicorn_config(monkeypatch, BIND="unix:/run/atelier.sock").bind == ["unix:/run/atelier.sock"]


def test_gunicorn_has_no_shared_control_socket(monkeypatch):
    config = gunicorn_config(monkeypatch)
    assert config.control_socket_disable is True
    # And a slow request holds a thread for a bounded time.
    assert config.timeout <= 30


# --- file permissions --------------------------------------------------------------------


def test_stored_images_are_0640_in_0750_folders_whatever_the_umask(user, media_root):
    task = TaskFactory(owner=user, num_images=1)
    previous = os.umask(0o022)  # a usual umask: without the settings, 0644 files, 0755 folders
    try:
        run_task(str(task.pk))
    finally:
        os.umask(previous)
    task.refresh_from_db()
    assert task.status == Task.Status.COMPLETED
    image = task.images.get()
    for name in (image.file.name, image.thumbnail.name):
        path = Path(media_root) / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o640, name
        folder = path.parent
        while folder != Path(media_root):
            assert stat.S_IMODE(folder.stat().st_mode) == 0o750, folder
            folder = folder.parent
