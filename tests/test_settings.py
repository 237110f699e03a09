"""Production settings come from the environment and pass Django's deployment checks."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    """manage.py with the real settings; pass HOME to keep a generated key out of the real one."""
    base = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "DEBUG",
            "SECRET_KEY",
            "SECRET_KEY_FILE",
            "XDG_CONFIG_HOME",
            "HTTPS",
            "ALLOWED_HOSTS",
            "DJANGO_SETTINGS_MODULE",
        }
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=120
    )


@pytest.mark.subprocess
def test_check_deploy_is_clean_with_production_variables():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="atelier.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.subprocess
def test_production_without_a_secret_key_uses_a_generated_one_that_passes_the_deploy_checks(tmp_path):
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="false",
        ALLOWED_HOSTS="atelier.example.com",
        HOME=str(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
    assert (tmp_path / ".config" / "atelier" / "secret_key").is_file()


@pytest.mark.subprocess
def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    """Neither SECRET_KEY nor a key file that can be read or created (here under a plain file)."""
    (tmp_path / "file").write_text("")
    result = manage(
        "check",
        DEBUG="false",
        SECRET_KEY_FILE=str(tmp_path / "file" / "secret_key"),
        ALLOWED_HOSTS="atelier.example.com",
        HOME=str(tmp_path),
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "set SECRET_KEY, or SECRET_KEY_FILE" in result.stderr


@pytest.mark.subprocess
def test_production_refuses_a_weak_secret_key(tmp_path):
    result = manage("check", DEBUG="false", SECRET_KEY="x", ALLOWED_HOSTS="atelier.example.com", HOME=str(tmp_path))
    assert result.returncode != 0
    assert "SECRET_KEY is too weak for DEBUG=false" in result.stderr


@pytest.mark.subprocess
def test_defaults_need_nothing(tmp_path):
    result = manage("check", DATABASE_URL=f"sqlite:///{tmp_path}/fresh.sqlite3", HOME=str(tmp_path))
    assert result.returncode == 0, result.stderr


def test_the_sqlite_defaults_use_wal_and_immediate_transactions(db):
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL run")
    assert connection.settings_dict["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"


@pytest.mark.subprocess
def test_healthz_answers_any_host_in_production():
    script = (
        "import django; django.setup();"
        "from django.test import Client;"
        "r = Client(HTTP_HOST='127.0.0.1').get('/healthz');"
        "print(r.status_code, r.content.decode())"
    )
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "HTTPS"}}
    env.update(
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="atelier.example.com",
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == '200 {"status": "ok"}', result.stderr
