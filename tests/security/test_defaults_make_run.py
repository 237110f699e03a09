"""Finding 6 end to end: `make run` on a fresh copy is safe by default and still just works.

A copy of the project without local state (no .env, database, media, static files or key) runs
`make run` exactly as the README says, with a HOME of its own: DEBUG is off yet the pages and
their static files load, gunicorn listens on loopback only, the per-install key is generated
0600 under ~/.config/atelier, and the database is not readable by other users (umask 027).
`make dev` is the same with DEBUG on, even when .env says otherwise.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import time
import urllib.error
import urllib.parse
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


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """This machine's environment without this test run's settings, as a person's shell has it."""
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(OUR_PREFIXES) and key not in OUR_VARIABLES
    }
    return {**env, "HOME": str(home), **extra}


MAKES: dict[Path, subprocess.Popen] = {}  # each make() output file's process


@contextmanager
def make(target: str, project: Path, home: Path, port: int, **extra: str) -> Iterator[Path]:
    """`make <target>` in its own session (so stopping it stops honcho, gunicorn and qcluster),
    with none of this test run's settings (plus `extra`); yields its output file once the port answers."""
    # The already installed environment instead of a fresh one (the install itself is not the point).
    env = clean_env(home, PORT=str(port), VENV=str(VENV), **extra)
    output = project / f"make-{target}.log"
    process = subprocess.Popen(
        ["make", target],
        cwd=project,
        env=env,
        stdout=open(output, "wb"),  # noqa: SIM115 (the process owns it)
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    MAKES[output] = process
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


def get_host(address: str, port: int, path: str, host: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(f"http://{address}:{port}{path}", headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def test_the_readme_walk_through_opened_to_the_lan_with_sign_up_waiting_for_approval(fresh_copy, tmp_path):
    """README "Run it": `BIND=0.0.0.0 make run` on a fresh clone, nothing configured, is reachable
    at this machine's LAN address with DEBUG off; other Host headers are refused; a sign-up there
    waits for approval."""
    address = outward_address()
    if address is None:
        pytest.skip("this machine has no address outside loopback")
    home, port = tmp_path / "home", free_port()
    home.mkdir()
    with make("run", fresh_copy, home, port, BIND="0.0.0.0") as output:
        log = output.read_text()
        assert f"Listening at: http://0.0.0.0:{port}" in log and f"http://{address}:{port}/" in log, log
        status, page = get_host(address, port, "/accounts/login/")
        assert status == 200 and 'name="username"' in page, page[-2000:]
        status, page = get_host(address, port, "/no-such-page/")
        assert status == 404 and "URLconf" not in page  # DEBUG is off
        assert get_host(address, port, "/accounts/login/", host="evil.example")[0] == 400
        assert get_host(address, port, "/accounts/login/", host=f"evil.example:{port}")[0] == 400
        # The icon, which browsers fetch as /favicon.ico (admin pages too).
        with urllib.request.urlopen(f"http://{address}:{port}/favicon.ico", timeout=10) as response:
            assert response.status == 200 and response.headers["Content-Type"].startswith("image/svg")
        # Sign-up from the LAN: the account waits for staff (SIGNUP=approval, the default).
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        signup_url = f"http://{address}:{port}/accounts/signup/"
        with opener.open(signup_url, timeout=10) as response:
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.read().decode())
        assert token is not None
        form = urllib.parse.urlencode(
            {
                "csrfmiddlewaretoken": token[1],
                "username": "newbie",
                "password1": "a-long-pass-phrase-9",
                "password2": "a-long-pass-phrase-9",
            }
        ).encode()
        request = urllib.request.Request(signup_url, data=form, headers={"Referer": signup_url})
        with opener.open(request, timeout=10) as response:
            assert response.status == 201
            assert "approve" in response.read().decode().lower()


def run_manage(project: Path, home: Path, *args: str) -> str:
    result = subprocess.run(
        [str(VENV / "bin" / "python"), "manage.py", *args],
        cwd=project,
        env=clean_env(home),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def task_status(project: Path, home: Path) -> str:
    code = "from generator.models import Task; print('status=' + Task.objects.get().status)"
    return run_manage(project, home, "shell", "-c", code).split("status=")[-1].strip()


def test_ctrl_c_lets_a_running_generation_finish_within_the_grace_period(fresh_copy, tmp_path):
    """Ctrl-C on `make run` while the worker generates (the offline sketch, slowed to 6 s): the
    generation completes, and everything has stopped before the grace period is over."""
    home, port = tmp_path / "home", free_port()
    home.mkdir()
    grace = 30
    with make("run", fresh_copy, home, port, OFFLINE_DELAY_SECONDS="6", STOP_GRACE_SECONDS=str(grace)) as output:
        run_manage(fresh_copy, home, "generate", "a lantern, slowly", "--user", "admin")
        deadline = time.monotonic() + 30
        while task_status(fresh_copy, home) != "processing":
            assert time.monotonic() < deadline, output.read_text()
            time.sleep(0.3)
        time.sleep(1)  # well into the 6 s generation
        running = MAKES[output]
        started = time.monotonic()
        os.killpg(running.pid, signal.SIGINT)  # what a terminal does on Ctrl-C: make and honcho get it
        running.wait(timeout=grace + 15)
        took = time.monotonic() - started
        log = output.read_text()
        assert "SIGKILL" not in log, log
        assert "worker.1 stopped (rc=0)" in log, log
        assert took < grace, log
        print(f"Ctrl-C to exit: {took:.1f} s (generation of 6 s under way for about 1 s)")
    assert task_status(fresh_copy, home) == "completed"
    with socket.socket() as sock:  # the server is gone: the port is free again
        sock.bind(("127.0.0.1", port))
