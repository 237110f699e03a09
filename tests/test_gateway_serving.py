"""Twenty generations waiting at once through the real gunicorn (config/gunicorn.conf.py, its
uvicorn worker, one process) leave the pages answering, and hold no thread each.

No worker runs, so every task stays pending and every POST waits; the studio's own pages and
polls are then asked for. Finally the tasks are stopped through /api/v1, and each waiting
request hears of it at once (the Hub) and answers 409 without inviting a retry.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from contextlib import suppress
from pathlib import Path

import openai
import pytest
import requests

from tests.security import servers
from tests.security.servers import ROOT

pytestmark = pytest.mark.subprocess

WAITING = 20
PAGE_SECONDS = 5.0  # generous: a thread-per-request server with its threads all waiting never answers

SETUP = """
import django; django.setup()
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.cached_db import SessionStore
from accounts.tokens import create_token
user = get_user_model().objects.create_user("ada", password="a long enough password")
session = SessionStore()
session["_auth_user_id"] = str(user.pk)
session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
session["_auth_user_hash"] = user.get_session_auth_hash()
session.create()
print(session.session_key, create_token(user, "chat").plaintext)
"""


def worker_threads(master_pid: int) -> int:
    """Threads of gunicorn's worker process (the master's child)."""
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(master_pid):
            return int(fields["Threads"])
    raise AssertionError("gunicorn has no worker process")


def task_ids(database: Path) -> list[str]:
    with sqlite3.connect(database) as db:
        return [str(uuid.UUID(row[0])) for row in db.execute("SELECT id FROM generator_task")]


def timed_get(url: str, **kwargs) -> tuple[int, float]:
    started = time.monotonic()
    answer = requests.get(url, timeout=30, **kwargs)
    return answer.status_code, time.monotonic() - started


def test_twenty_waiting_generations_leave_the_pages_answering(tmp_path):
    env = servers.app_env(
        tmp_path,
        servers.free_port(),
        WEB_CONCURRENCY="1",
        DEBUG="true",  # the pages' static links without a collectstatic manifest
        OPENAI_COMPAT_WAIT_SECONDS="120",
        GENERATE_RATE="100/m",
        MAX_QUEUED_TASKS_PER_USER="100",
    )
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    session_key, token = (
        subprocess.run([sys.executable, "-c", SETUP], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
        .stdout.split("\n")[-2]
        .split()
    )
    site = f"http://localhost:{env['PORT']}"
    bearer = {"Authorization": f"Bearer {token}"}
    session = {"Cookie": f"sessionid={session_key}"}
    answers: list[requests.Response] = []

    def generate(n: int) -> None:
        answers.append(
            requests.post(f"{site}/v1/images/generations", json={"prompt": f"wait {n}"}, headers=bearer, timeout=120)
        )

    with (tmp_path / "gunicorn.log").open("wb") as log, servers.gunicorn_process(env, log) as gunicorn:
        waiting = [threading.Thread(target=generate, args=(n,)) for n in range(WAITING)]
        for thread in waiting:
            thread.start()
        deadline = time.monotonic() + 60
        while len(task_ids(tmp_path / "db.sqlite3")) < WAITING and time.monotonic() < deadline:
            time.sleep(0.1)
        tasks = task_ids(tmp_path / "db.sqlite3")
        assert len(tasks) == WAITING

        # All twenty are waiting for their pictures, and the pages still answer.
        assert answers == []
        for page, headers in (
            ("/gallery/", session),
            (f"/tasks/{tasks[0]}/card", session),
            ("/history/", session),
            (f"/api/v1/task/{tasks[0]}", bearer),
            ("/v1/models", bearer),
        ):
            status, seconds = timed_get(site + page, headers=headers)
            assert (page, status) == (page, 200)
            assert seconds < PAGE_SECONDS, f"{page} took {seconds:.1f} s"
        # Waiting on the event loop: the worker's threads are its thread pool, not one per request.
        assert worker_threads(gunicorn.pid) < WAITING
        assert answers == []

        # Stopping the tasks ends the waits at once (each hears of its task through the Hub).
        for task_id in tasks:
            stopped = requests.post(f"{site}/api/v1/task/{task_id}/cancel", headers=bearer, timeout=30)
            assert stopped.status_code == 200
        for thread in waiting:
            thread.join(timeout=60)

    assert len(answers) == WAITING
    assert {answer.status_code for answer in answers} == {409}
    assert {answer.json()["error"]["code"] for answer in answers} == {"task_canceled"}
    assert {answer.headers["x-should-retry"] for answer in answers} == {"false"}


def test_through_gunicorn_and_a_real_worker_the_openai_client_gets_its_pictures(tmp_path):
    """The production path end to end: gunicorn's uvicorn worker, /v1/ without middleware, the
    wait woken by the Hub when the qcluster process (another process) finishes the task."""
    env = servers.app_env(tmp_path, servers.free_port(), DEBUG="true", Q_WORKERS="1")
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    _session_key, token = (
        subprocess.run([sys.executable, "-c", SETUP], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
        .stdout.split("\n")[-2]
        .split()
    )
    with (tmp_path / "qcluster.log").open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: its workers go with it
        )
    try:
        with servers.gunicorn_process(env):
            client = openai.OpenAI(base_url=f"http://localhost:{env['PORT']}/v1", api_key=token, timeout=60)
            answer = client.images.generate(prompt="through the worker", n=2, size="256x192", response_format="url")
            pictures = [requests.get(item.url, timeout=10) for item in answer.data]
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        finally:
            with suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGKILL)

    assert [picture.headers["Content-Type"] for picture in pictures] == ["image/png", "image/png"]
    assert all(picture.content.startswith(b"\x89PNG") for picture in pictures)
    assert {item.revised_prompt for item in answer.data} == {"through the worker"}
