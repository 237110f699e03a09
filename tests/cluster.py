"""A real django-q2 worker for tests: `python manage.py qcluster` against the test database.

Most tests run tasks inline (tests/settings.py sets Q_CLUSTER["sync"] = True). A test that
needs the real thing imports the fixtures from here (no plugin needed):

    from tests.cluster import wait_for_final  # the fixtures come from tests/conftest.py

    @pytest.mark.cluster
    def test_something(start_qcluster):
        cluster = start_qcluster(OFFLINE_DELAY_SECONDS=1)
        task = create_task(...)          # on_commit enqueues into the ORM broker
        wait_for_final(task, timeout=30)

`start_qcluster` (and `qcluster`, which is `start_qcluster()`) need `transactional_db`: the
worker is another process and only sees committed rows. While the fixture is active, this
process's `async_task` goes to the broker instead of running inline.

The subprocess: `sys.executable manage.py qcluster` in the project directory, its own process
group, with DATABASE_URL = this process's test database, MEDIA_ROOT = the test's MEDIA_ROOT,
CACHE_DIR and its log in tmp_path, Q_WORKERS=2, and the test settings with Q_SYNC=false.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

from .marks import require_mark

BASE_DIR = Path(__file__).resolve().parent.parent
FINAL_STATUSES = ("completed", "failed", "canceled")
READY_MARKER = re.compile(r"Q Cluster \S+( \[[^]]*\])? running")  # logged once the sentinel guards its workers
STOP_GRACE_SECONDS = 15.0

_running: list[QCluster] = []


def database_url(settings_dict: dict | None = None) -> str:
    """A DATABASE_URL (django-environ syntax) for the database this process is connected to."""
    settings_dict = settings_dict if settings_dict is not None else connection.settings_dict
    engine, name = settings_dict["ENGINE"], settings_dict["NAME"]
    if engine == "django.db.backends.sqlite3":
        if not name or str(name) == ":memory:" or "mode=memory" in str(name):
            raise RuntimeError("A qcluster process needs a file-based SQLite test database, not :memory:.")
        return f"sqlite:///{Path(name).resolve()}"  # absolute path: sqlite:////abs/path
    if engine in ("django.db.backends.postgresql", "django.db.backends.postgresql_psycopg2"):
        user = quote(settings_dict.get("USER") or "", safe="")
        password = quote(settings_dict.get("PASSWORD") or "", safe="")
        credentials = f"{user}:{password}@" if password else f"{user}@" if user else ""
        host = settings_dict.get("HOST") or "localhost"
        port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
        return f"postgres://{credentials}{host}{port}/{quote(str(name), safe='')}"
    raise RuntimeError(f"tests/cluster.py does not know how to point a qcluster at {engine}.")


@dataclass
class QCluster:
    """One running `manage.py qcluster` process and its combined stdout/stderr log."""

    process: subprocess.Popen
    log_path: Path
    env: dict[str, str] = field(repr=False)
    started: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def is_running(self) -> bool:
        return self.process.poll() is None

    def wait_until_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if READY_MARKER.search(self.output()):
                return
            if not self.is_running():
                raise RuntimeError(
                    f"qcluster exited with code {self.process.returncode} before it was ready:\n{self.output()}"
                )
            time.sleep(0.05)
        raise TimeoutError(f"qcluster was not ready within {timeout:g} s:\n{self.output()}")

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> int | None:
        """SIGTERM (django-q2 finishes running tasks, then stops), SIGKILL after `grace` seconds.

        Afterwards anything left in the process group this fixture created is killed too, so
        no worker outlives the test even if the main process died abruptly.
        """
        if self.is_running():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self._kill_group()
                self.process.wait(timeout=10)
        self._kill_group()
        if self in _running:
            _running.remove(self)
        return self.process.returncode

    def _kill_group(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # the group is this process's own session
        except (ProcessLookupError, PermissionError):
            pass


def launch_qcluster(
    *, media_root: Path | str, work_dir: Path, ready_timeout: float | None = 30.0, **extra_env: object
) -> QCluster:
    """Start a qcluster subprocess on the current test database; see the module docstring."""
    work_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "Q_SYNC": "false",
            "PYTHONUNBUFFERED": "1",
            "DATABASE_URL": database_url(),
            "MEDIA_ROOT": str(media_root),
            "CACHE_DIR": str(work_dir / "cache"),
            "Q_WORKERS": "2",
        }
    )
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env.update({key: str(value) for key, value in extra_env.items()})
    log_path = work_dir / f"qcluster-{len(list(work_dir.glob('qcluster-*.log')))}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=BASE_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stop() can reap the workers
        )
    cluster = QCluster(process=process, log_path=log_path, env=env)
    _running.append(cluster)
    if ready_timeout:
        try:
            cluster.wait_until_ready(ready_timeout)
        except BaseException:
            cluster.stop()
            raise
    return cluster


def _report(request: pytest.FixtureRequest, title: str, text: str) -> None:
    """Write through the terminal reporter so the log is shown together with the failure."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.ensure_newline()
        reporter.section(title, sep="-")
        reporter.line(text.rstrip() or "(no output)")
    else:
        sys.stderr.write(f"\n--- {title} ---\n{text}\n")


@pytest.fixture
def start_qcluster(
    request: pytest.FixtureRequest, transactional_db, settings, tmp_path: Path, monkeypatch
) -> Iterator[Callable[..., QCluster]]:
    """Factory: `start_qcluster(ready_timeout=30, **env)` starts a qcluster and returns a QCluster.

    Extra keyword arguments become environment variables of the subprocess (values are str()-ed),
    e.g. OFFLINE_DELAY_SECONDS=1. Every cluster started is stopped when the test ends; if the test
    failed, each one's output is printed. Only for tests marked `cluster` (tests/marks.py).
    """
    from django_q.conf import Conf

    require_mark(request, "cluster")
    monkeypatch.setattr(Conf, "SYNC", False)
    failed_before = request.session.testsfailed
    clusters: list[QCluster] = []

    def start(ready_timeout: float | None = 30.0, **env: object) -> QCluster:
        cluster = launch_qcluster(
            media_root=settings.MEDIA_ROOT,
            work_dir=tmp_path / "qcluster",
            ready_timeout=ready_timeout,
            **env,
        )
        clusters.append(cluster)
        return cluster

    yield start

    problems = []
    for cluster in clusters:
        code = cluster.stop()
        if code not in (0, -signal.SIGTERM):
            problems.append(f"qcluster pid {cluster.pid} exited with code {code}")
    if request.session.testsfailed > failed_before or problems:
        for cluster in clusters:
            _report(request, f"qcluster pid {cluster.pid} output ({cluster.log_path})", cluster.output())
    if problems:
        pytest.fail("; ".join(problems), pytrace=False)


@pytest.fixture
def qcluster(start_qcluster) -> QCluster:
    """One running qcluster with the default environment."""
    return start_qcluster()


def wait_for_final(task, timeout: float = 30.0, interval: float = 0.05):
    """Poll the Task row until it is completed, failed or canceled; return the fresh Task.

    `task` is a generator Task or its id. Fails (AssertionError with the running clusters' output)
    when the deadline passes first.
    """
    from generator.models import Task

    pk = getattr(task, "pk", task)
    deadline = time.monotonic() + timeout
    current = None
    while True:
        current = Task.objects.filter(pk=pk).first()
        if current is not None and current.status in FINAL_STATUSES:
            return current
        if time.monotonic() >= deadline:
            break
        if _running and not any(cluster.is_running() for cluster in _running):
            break  # no worker left that could finish it
        time.sleep(interval)
    status = current.status if current is not None else "missing"
    logs = "\n".join(f"--- qcluster pid {c.pid} ---\n{c.output()[-6000:]}" for c in _running)
    raise AssertionError(f"task {pk} still {status!r} after {timeout:g} s\n{logs}")
