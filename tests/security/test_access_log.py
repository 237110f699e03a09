"""Finding 10: words people search for (?q=…) and prompts must not reach the access log unless
LOG_PROMPTS=true. The real gunicorn with config/gunicorn.conf.py writes the log here."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import pytest

from . import servers

pytestmark = pytest.mark.subprocess
SECRET_WORDS = "lighthouse-at-dawn-42"


def access_log(tmp_path: Path, **settings: str) -> str:
    """What gunicorn's access log says after a search-like request."""
    log = tmp_path / "access.log"
    with open(log, "wb") as out, servers.gunicorn(tmp_path, out, ACCESS_LOG="true", **settings) as port:
        referer = f"http://127.0.0.1:{port}/gallery/?q={SECRET_WORDS}"
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/healthz?q={SECRET_WORDS}", headers={"Referer": referer}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        time.sleep(0.5)  # the access line is written after the response
    return log.read_text()


def test_the_access_log_keeps_the_path_but_not_the_query_or_referer(tmp_path):
    text = access_log(tmp_path)
    assert '"GET /healthz HTTP/1.1" 200' in text
    assert SECRET_WORDS not in text


def test_log_prompts_keeps_the_query_for_an_operator_who_wants_it(tmp_path):
    text = access_log(tmp_path, LOG_PROMPTS="true")
    assert f"/healthz?q={SECRET_WORDS}" in text


def test_the_logged_client_is_the_connecting_address_not_a_forwarded_one(tmp_path):
    """uvicorn's own X-Forwarded-For rewrite is off (config/asgi_server.py): REMOTE_ADDR stays the
    peer, as under gunicorn's threads, and only TRUSTED_PROXIES decides who the client is."""
    log = tmp_path / "access.log"
    with open(log, "wb") as out, servers.gunicorn(tmp_path, out, ACCESS_LOG="true") as port:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/healthz", headers={"X-Forwarded-For": "203.0.113.7"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        time.sleep(0.5)
    text = log.read_text()
    assert "127.0.0.1:" in text and '"GET /healthz HTTP/1.1" 200' in text
    assert "203.0.113.7" not in text
