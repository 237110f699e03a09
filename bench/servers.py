"""The two web servers: the app exactly as in production, and the bare baseline beside it.

Both run `gunicorn <asgi app> --config config/gunicorn.conf.py` (the Procfile's command), so
they share worker class, processes, timeouts and the access log; only the ASGI app differs
(and both apps serve their sync views the same way, config/asgi_site.py).
A third, for the serving comparison (bench/serving.py): the app under gunicorn's gthread worker
over WSGI, as it was served before the ASGI move.
"""

from __future__ import annotations

import socket
import subprocess
import urllib.error
import urllib.request

from . import processes
from .workdir import BASE_DIR, PYTHON, WorkDir

GUNICORN_CONFIG = "config/gunicorn.conf.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def collect_static(workdir: WorkDir) -> None:
    """DEBUG=false serves hashed static files from the collectstatic manifest, as Docker does."""
    subprocess.run(
        [PYTHON, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=BASE_DIR,
        env=workdir.app_env(),
        check=True,
    )


def start_app(workdir: WorkDir, port: int, name: str = "app", **overrides: object) -> processes.Child:
    """`name` tells several app servers' logs apart (the scale-out run starts two)."""
    env = workdir.app_env(BIND=f"127.0.0.1:{port}", **overrides)
    return _gunicorn(name, "config.asgi", env, workdir, f"http://127.0.0.1:{port}", "/healthz")


def start_app_gthread(workdir: WorkDir, port: int, threads: int, **overrides: object) -> processes.Child:
    """The app as it was served before the ASGI move: gunicorn's gthread worker serving
    config.wsgi, `threads` threads in each of WEB_CONCURRENCY processes; everything else
    (bind, timeouts, access log) from the same config file. The command line's worker class
    and threads override the file's."""
    env = workdir.app_env(BIND=f"127.0.0.1:{port}", **overrides)
    extra = ["--worker-class", "gthread", "--threads", str(threads)]
    return _gunicorn("app-gthread", "config.wsgi", env, workdir, f"http://127.0.0.1:{port}", "/healthz", extra)


def start_baseline(workdir: WorkDir, port: int) -> processes.Child:
    env = workdir.app_env(
        BIND=f"127.0.0.1:{port}",
        DJANGO_SETTINGS_MODULE="bench.baseline.settings",
        BASELINE_DATABASE=str(workdir.baseline_database),
    )
    return _gunicorn("baseline", "bench.baseline.asgi", env, workdir, f"http://127.0.0.1:{port}", "/json/")


def _gunicorn(
    name: str,
    wsgi: str,
    env: dict[str, str],
    workdir: WorkDir,
    url: str,
    ready_path: str,
    extra: list[str] | None = None,
) -> processes.Child:
    argv = [PYTHON, "-m", "gunicorn", wsgi, "--config", GUNICORN_CONFIG, *(extra or [])]
    child = processes.start(name, argv, env=env, cwd=BASE_DIR, log_path=workdir.logs / f"{name}.log")
    child.url = url
    try:
        processes.wait_for(
            lambda: _answers(child, url + ready_path), timeout=60, interval=0.1, what=f"{name} server start"
        )
    except BaseException:
        child.stop()
        raise
    return child


def _answers(child: processes.Child, url: str) -> bool:
    if not child.is_running():
        raise RuntimeError(f"{child.name} server exited with {child.process.returncode}:\n{child.output()}")
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def fetch(url: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """One request, redirects not followed (a 302 to the sign-in page must show as a 302)."""
    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, headers=headers)
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
