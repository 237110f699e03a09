"""scripts/supervise.py, `make run`'s honcho: the grace period on Ctrl-C, read like the processes'
own variables, bounds the stop; a second Ctrl-C stops at once. (Ctrl-C while a real generation
runs: tests/security/test_defaults_make_run.py.)"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import supervise  # noqa: E402

# Takes SIGTERM as "finish up", and takes its time: like a worker in the middle of a generation.
STUBBORN = 'exec python -c "import signal, time; signal.signal(signal.SIGTERM, lambda *a: print(\\"term\\", flush=True)); time.sleep(120)"'


def test_the_grace_comes_from_the_env_files_over_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("STOP_GRACE_SECONDS", "12")
    assert supervise.grace_seconds(["start", "-e", str(tmp_path / "missing")]) == 12
    (tmp_path / ".env").write_text("STOP_GRACE_SECONDS=7\n")
    assert supervise.grace_seconds(["start", "-e", f"{tmp_path / '.env'},{tmp_path / 'missing'}"]) == 7
    monkeypatch.delenv("STOP_GRACE_SECONDS")
    assert supervise.grace_seconds(["start", "--env=/nonexistent"]) == supervise.DEFAULT_GRACE_SECONDS


@pytest.mark.parametrize("value", ["soon", "-1", "1e9"])
def test_a_bad_grace_is_refused(monkeypatch, value):
    monkeypatch.setenv("STOP_GRACE_SECONDS", value)
    with pytest.raises(SystemExit, match="STOP_GRACE_SECONDS"):
        supervise.grace_seconds(["start", "-e", "/nonexistent"])


@pytest.fixture
def started(tmp_path):
    """start(grace) → (process, log); whatever is left is killed afterwards, the child too."""
    runs: list[tuple[subprocess.Popen, Path]] = []
    yield lambda grace: runs.append(start(tmp_path, grace)) or runs[-1]
    for process, log in runs:
        children = re.findall(r"started \(pid=(\d+)\)", log.read_text())
        for group in [process.pid, *map(int, children)]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)


def start(tmp_path: Path, grace: str) -> tuple[subprocess.Popen, Path]:
    (tmp_path / "Procfile").write_text(f"slow: {STUBBORN}\n")
    log = tmp_path / "out.log"
    env = {**os.environ, "STOP_GRACE_SECONDS": grace, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "supervise.py"), "start", "-f", "Procfile", "-e", "none"],
        cwd=tmp_path,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 20
    while "slow.1 started" not in log.read_text():
        assert time.monotonic() < deadline and process.poll() is None, log.read_text()
        time.sleep(0.1)
    time.sleep(0.5)  # the child has installed its handler
    return process, log


@pytest.mark.subprocess
def test_a_process_that_does_not_finish_is_killed_when_the_grace_is_over(started):
    process, log = started("2")
    started = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)
    process.wait(timeout=20)
    took = time.monotonic() - started
    text = log.read_text()
    assert 2 <= took < 6, text
    assert "has 2 s to finish" in text and "slow.1 | term" in text and "sending SIGKILL to slow.1" in text


@pytest.mark.subprocess
def test_a_second_ctrl_c_stops_at_once(started):
    process, log = started("60")
    os.killpg(process.pid, signal.SIGINT)
    time.sleep(1.5)
    assert process.poll() is None  # still waiting for the slow process
    started = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)
    process.wait(timeout=20)
    assert time.monotonic() - started < 3 and "Stopping at once." in log.read_text()
