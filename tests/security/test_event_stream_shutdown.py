"""A stopping server ends the open event streams at once (config/asgi_server.py, config/asgi.py):
the real gunicorn with config/gunicorn.conf.py, a signed-in page's stream open, then SIGTERM."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from . import servers
from .servers import ROOT

pytestmark = pytest.mark.subprocess

SESSION = """
import django; django.setup()
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.cached_db import SessionStore
user = get_user_model().objects.create_user("ada", password="a long enough password")
session = SessionStore()
session["_auth_user_id"] = str(user.pk)
session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
session["_auth_user_hash"] = user.get_session_auth_hash()
session.create()
print(session.session_key)
"""


def test_a_stopping_server_ends_open_event_streams_at_once(tmp_path):
    env = servers.app_env(tmp_path, servers.free_port())
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    key = subprocess.run(
        [sys.executable, "-c", SESSION], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()
    with servers.gunicorn_process(env) as process:
        sock = socket.create_connection(("127.0.0.1", int(env["PORT"])), timeout=10)
        sock.sendall(f"GET /tasks/events HTTP/1.1\r\nHost: localhost\r\nCookie: sessionid={key}\r\n\r\n".encode())
        reader = sock.makefile("rb")
        assert reader.readline().strip() == b"HTTP/1.1 200 OK"
        while b"event: ready" not in reader.readline():
            pass
        stopped = time.monotonic()
        process.terminate()
        # The stream ends (the server closes it) and the server exits, long before graceful_timeout (20 s).
        while reader.readline():
            pass
        process.wait(timeout=15)
        assert time.monotonic() - stopped < 5
        sock.close()
