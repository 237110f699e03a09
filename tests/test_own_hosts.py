"""The default ALLOWED_HOSTS (config.hosts): this machine's own names and addresses, found quickly
and without failing, only when ALLOWED_HOSTS is not set. End to end (a LAN address answers 200,
a foreign Host header 400): tests/security/test_defaults_make_run.py."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from config import hosts

ROOT = Path(__file__).resolve().parent.parent


def outward_ipv4() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("10.255.255.255", 1))
        except OSError:
            return None
        return str(sock.getsockname()[0])


def test_it_has_loopback_the_host_name_and_the_outward_address():
    found = hosts.own_hosts()
    assert found[:3] == ["localhost", "127.0.0.1", "[::1]"]
    assert socket.gethostname().lower() in found
    address = outward_ipv4()
    if address:
        assert address in found
    assert len(found) == len(set(found))


@pytest.mark.parametrize(
    ("found", "entry"),
    [
        ("192.168.1.50", "192.168.1.50"),
        ("fd00::2", "[fd00::2]"),
        ("2001:DB8:0:0::7", "[2001:db8::7]"),
        ("fe80::1%eth0", None),  # link-local: no browser address can carry the zone
        ("0.0.0.0", None),
        ("::", None),
        ("224.0.0.1", None),
        ("Studio.Example.", "studio.example"),
    ],
)
def test_entries_are_written_as_the_host_header_carries_them(found, entry):
    assert hosts.host_entry(found) == entry


def test_a_hanging_or_failing_lookup_adds_nothing_and_holds_nothing_up(monkeypatch):
    def hangs() -> list[str]:
        time.sleep(5)
        return ["late.example"]

    def fails() -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(hosts, "names", hangs)
    monkeypatch.setattr(hosts, "resolved_addresses", fails)
    started = time.monotonic()
    found = hosts.own_hosts(seconds=0.3)
    assert time.monotonic() - started < 2
    assert "late.example" not in found and found[:3] == hosts.LOOPBACK


def settings_hosts(**env: str) -> list[str]:
    base = {key: value for key, value in os.environ.items() if key not in {"ALLOWED_HOSTS", "DJANGO_SETTINGS_MODULE"}}
    code = "import django, json; django.setup(); from django.conf import settings; print(json.dumps(settings.ALLOWED_HOSTS))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "tests.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.subprocess
def test_settings_use_them_only_when_allowed_hosts_is_not_set():
    default = settings_hosts()
    assert default[:3] == hosts.LOOPBACK and socket.gethostname().lower() in default
    assert settings_hosts(ALLOWED_HOSTS="atelier.example.com") == ["atelier.example.com"]
