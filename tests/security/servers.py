"""Real gunicorn (config/gunicorn.conf.py, production settings) on a free local port, for the
tests that need the app server itself: slow clients, the access log."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen, deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if process.poll() is not None:
            raise AssertionError(f"{process.args} exited with {process.returncode}")
        with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


def wait_for_answer(port: int, process: subprocess.Popen, deadline: float = 30.0) -> None:
    """gunicorn listens before its worker has loaded the app: wait until /healthz is answered."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if process.poll() is not None:
            raise AssertionError(f"{process.args} exited with {process.returncode}")
        with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            if sock.makefile("rb").readline().startswith(b"HTTP/1.1 "):
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing answered /healthz on {port}")


def app_env(work: Path, port: int, **settings: str) -> dict[str, str]:
    """Production settings (DEBUG off, plain http) for an app whose database, media and cache
    live in `work`, with `settings` on top."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "REDIS_", "STORAGE"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        HTTPS="false",  # the tests speak plain http
        DATABASE_URL=f"sqlite:///{work / 'db.sqlite3'}",
        MEDIA_ROOT=str(work / "media"),
        CACHE_DIR=str(work / "cache"),
        PORT=str(port),
    )
    env.pop("BIND", None)  # the config's default: loopback
    env.update(settings)
    return env


@contextmanager
def gunicorn_process(env: dict[str, str], output: IO[bytes] | int = subprocess.DEVNULL) -> Iterator[subprocess.Popen]:
    """gunicorn with config/gunicorn.conf.py in `env` (app_env), answering on env["PORT"]."""
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.asgi", "--config", "config/gunicorn.conf.py"],
        cwd=ROOT,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT if output is not subprocess.DEVNULL else subprocess.DEVNULL,
    )
    try:
        wait_for_port(int(env["PORT"]), process)
        wait_for_answer(int(env["PORT"]), process)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=30)


@contextmanager
def gunicorn(work: Path, output: IO[bytes] | int = subprocess.DEVNULL, **settings: str) -> Iterator[int]:
    """gunicorn serving the app from `work` (its database, media, cache); yields its port.
    `settings` are environment variables on top of production ones (DEBUG off, plain http)."""
    env = app_env(work, free_port(), **settings)
    with gunicorn_process(env, output):
        yield int(env["PORT"])
