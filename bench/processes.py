"""Child processes in their own process groups, always stopped: on success, error or Ctrl-C.

Every server, worker cluster and helper the benchmark starts goes through `start()`, which
puts it in a new session (so a whole tree, gunicorn's or qcluster's workers included, can be
signalled at once) and remembers it; `stop_all()` runs in the orchestrator's `finally`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

_running: list[Child] = []


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    log_path: Path
    url: str = ""  # for servers: where they answer

    @property
    def pid(self) -> int:
        return self.process.pid

    def is_running(self) -> bool:
        return self.process.poll() is None

    def output(self, tail: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except FileNotFoundError:
            return ""

    def stop(self, grace: float = 15.0) -> int | None:
        """SIGTERM to the leader (gunicorn's master and django-q2's cluster stop their own
        workers gracefully; signalled directly, workers would die mid-task), then SIGKILL to
        whatever is left of the group."""
        if self.is_running():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        _signal_group(self.pid, signal.SIGKILL)  # whatever is left of the tree
        self.process.wait(timeout=10)
        if self in _running:
            _running.remove(self)
        return self.process.returncode


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def start(name: str, argv: list[str], *, env: dict[str, str], cwd: Path, log_path: Path) -> Child:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    child = Child(name=name, process=process, log_path=log_path)
    _running.append(child)
    return child


def stop_all() -> None:
    for child in reversed(list(_running)):
        child.stop(grace=10.0)


def group_members(pgid: int) -> list[int]:
    """The pids in a process group (from /proc: no dependency needed)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the command name, which is in parentheses and may contain spaces.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def peak_rss_kb(pid: int) -> int:
    """VmHWM: the most resident memory this process has used since it started."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def wait_for(predicate, *, timeout: float, interval: float = 0.05, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout:g} s")
        time.sleep(interval)
