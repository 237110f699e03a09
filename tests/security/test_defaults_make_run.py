"""Finding 6 end to end: `make run` on a fresh copy is safe by default and still just works.

A copy of the project without local state (no .env, database, media, static files or key) runs
`make run` exactly as the README says, with a HOME of its own: DEBUG is off yet the pages and
their static files load, gunicorn listens on loopback only, the per-install key is generated
0600 under ~/.config/atelier, and the database is not readable by other users (umask 027).
`make dev` is the same with DEBUG on, even when .env says otherwise.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
VENV = ROOT / ".venv"

pytestmark = [
    pytest.mark.subprocess,
    pytest.mark.skipif(not (VENV / "bin" / "honcho").exists(), reason="needs the installed .venv (make install)"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def outward_address() -> str | None:
    """This machine's address on its network (no packet is sent), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("10.255.255.255", 1))
            address = str(sock.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") else address


@pytest.fixture(scope="module")
def fresh_copy(tmp_path_factory) -> Path:
    """The project as a fresh clone has it (README: "Run it")."""
    target = tmp_path_factory.mktemp("fresh") / "atelier"
    ignore = shutil.ignore_patterns(
        ".venv", ".git", "media", "var", "staticfiles", "db.sqlite3*", ".env", "__pycache__", "node_modules", "tests"
    )
    shutil.copytree(ROOT, target, ignore=ignore)
    return target


# This run's settings (the test settings set DEBUG and SECRET_KEY in the environment) and make's own.
OUR_PREFIXES = ("DJANGO_", "DATABASE_", "REDIS_", "S3_", "STORAGE", "ATELIER_", "XDG_")
OUR_VARIABLES = {"DEBUG", "SECRET_KEY", "SECRET_KEY_FILE", "HTTPS", "BIND", "MEDIA_ROOT", "CACHE_DIR", "MAKEFLAGS"}


@contextmanager
def make(target: str, project: Path, home: Path, port: int) -> Iterator[Path]:
    """`make <target>` in its own session (so stopping it stops honcho, gunicorn and qcluster),
    with none of this test run's settings; yields its output file once the port answers."""
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(OUR_PREFIXES) and key not in OUR_VARIABLES
    }
    # The already installed environment instead of a fresh one (the install itself is not the point).
    env.update(HOME=str(home), PORT=str(port), VENV=str(VENV))
    output = project / f"make-{target}.log"
    process = subprocess.Popen(
        ["make", target],
        cwd=project,
        env=env,
        stdout=open(output, "wb"),  # noqa: SIM115 (the process owns it)
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, output.read_text()
            with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            assert time.monotonic() < deadline, output.read_text()
            time.sleep(0.2)
        yield output
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        # make exits at once; gunicorn and the cluster shut down gracefully after it, and a
        # second start must not find the first one's server still holding the port.
        wait_until_gone(process.pid)


def wait_until_gone(group: int, seconds: float = 40) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    with suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)


def test_make_run_is_safe_by_default_and_serves_pages_with_static_files(fresh_copy, tmp_path):
    home, port = tmp_path / "home", free_port()
    home.mkdir()
    with make("run", fresh_copy, home, port) as output:
        status, page = get(f"http://localhost:{port}/accounts/login/")
        assert status == 200, page[-2000:]
        # The hashed copies from collectstatic: DEBUG is off, and whitenoise serves them.
        stylesheets = re.findall(r'href="(/static/[^"]+\.css)"', page)
        assert stylesheets and all(re.search(r"\.[0-9a-f]{12}\.css$", href) for href in stylesheets), stylesheets
        assert get(f"http://localhost:{port}{stylesheets[0]}")[0] == 200
        # No debug page: an unknown address is the plain 404, without the URLconf.
        status, page = get(f"http://localhost:{port}/no-such-page/")
        assert status == 404 and "URLconf" not in page
        # Loopback only.
        log = output.read_text()
        assert f"Listening at: http://127.0.0.1:{port}" in log, log
        assert "DEBUG is off" in log
        address = outward_address()
        if address:
            with pytest.raises(OSError), socket.create_connection((address, port), timeout=2):
                pass
        # The per-install key, outside the project, for this user only.
        key_file = home / ".config" / "atelier" / "secret_key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
        assert len(key_file.read_text().strip()) >= 50
        assert not list(fresh_copy.glob("**/secret_key"))
        # umask 027: the database (password hashes, sessions, tokens) is not world-readable.
        assert stat.S_IMODE((fresh_copy / "db.sqlite3").stat().st_mode) == 0o640
    # The second start reuses the key (sessions and queued tasks stay valid).
    key = key_file.read_text()
    with make("run", fresh_copy, home, port):
        assert get(f"http://localhost:{port}/accounts/login/")[0] == 200
    assert key_file.read_text() == key


def test_make_dev_turns_debug_on_even_over_a_dot_env(fresh_copy, tmp_path):
    home, port = tmp_path / "home", free_port()
    home.mkdir()
    (fresh_copy / ".env").write_text("DEBUG=false\n")
    try:
        with make("dev", fresh_copy, home, port) as output:
            status, page = get(f"http://localhost:{port}/no-such-page/")
            assert status == 404 and "URLconf" in page  # Django's technical 404: DEBUG is on
            assert "DEBUG=true (make dev)" in output.read_text()
            assert get(f"http://localhost:{port}/accounts/login/")[0] == 200
    finally:
        (fresh_copy / ".env").unlink()
