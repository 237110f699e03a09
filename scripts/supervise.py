"""`make run`'s process manager: honcho, with time for a running generation to finish on Ctrl-C.

honcho 2.0 answers Ctrl-C (or SIGTERM) by sending SIGTERM to every process's whole process group
and SIGKILL to any still running 5 seconds later (honcho.manager.KILL_WAIT, not an option). Both
break a running generation: the worker (`manage.py qcluster`) takes SIGTERM as "finish the step
you are on, claim nothing more", but only in its main process; django-q2's sentinel and worker
processes, in the same group, die at once on a SIGTERM of their own, and the task is left
processing until the sweeper takes it back. Here the first signal goes to each Procfile process
itself (the Procfile `exec`s them: gunicorn's master and the qcluster main process, which stop
their children in order), and SIGKILL to the groups only after STOP_GRACE_SECONDS (default 60).
A second Ctrl-C, a second or more later, stops everything at once.

Usage: the same as `honcho`, e.g. `python scripts/supervise.py start -f Procfile -p 8000`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

import honcho.command
import honcho.environ
import honcho.manager

DEFAULT_GRACE_SECONDS = 60.0
REPEAT_AFTER_SECONDS = 1.0


def env_files(argv: list[str]) -> str:
    """The files honcho's -e/--env names (default .env), comma-separated."""
    for index, arg in enumerate(argv):
        if arg in ("-e", "--env") and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith("--env="):
            return arg.split("=", 1)[1]
    return ".env"


def grace_seconds(argv: list[str]) -> float:
    """STOP_GRACE_SECONDS as the processes see it: from the env files over the environment."""
    files = honcho.environ.parse(
        "\n".join(Path(name.strip()).read_text() for name in env_files(argv).split(",") if Path(name.strip()).is_file())
    )
    raw = str(files.get("STOP_GRACE_SECONDS", os.environ.get("STOP_GRACE_SECONDS", ""))).strip()
    if not raw:
        return DEFAULT_GRACE_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        sys.exit(f"STOP_GRACE_SECONDS must be a number of seconds, not {raw!r}.")
    if not 0 <= seconds <= 24 * 3600:
        sys.exit(f"STOP_GRACE_SECONDS must be from 0 to 86400, not {raw!r}.")
    return seconds


class GracefulManager(honcho.manager.Manager):
    """honcho's Manager; the first signal stops the processes gently, a second one kills them."""

    _stop_requested = 0.0

    def _start(self) -> None:
        # loop() has just installed honcho's handler (SIGTERM to every process): wrap it.
        gentle = signal.getsignal(signal.SIGINT)
        grace = honcho.manager.KILL_WAIT

        def stop(signum: int, frame: FrameType | None) -> None:
            if self._terminating:
                # make passes its own SIGTERM on as well: only a later signal is a second request.
                if time.monotonic() - self._stop_requested >= REPEAT_AFTER_SECONDS:
                    self._system_print("Stopping at once.\n")
                    self.kill()
                return
            self._stop_requested = time.monotonic()
            self._system_print(
                f"Stopping: a generation in progress has {grace:g} s to finish (Ctrl-C again stops at once).\n"
            )
            if callable(gentle):
                gentle(signum, frame)

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        super()._start()

    def _any_stopped(self) -> bool:
        # honcho counts its wait from the first process that stopped; from the signal here, so
        # the grace period bounds the stop even when no process stops on its own.
        return bool(self._stop_requested) or super()._any_stopped()

    def _killall(self, force: bool = False) -> None:
        if force:  # SIGKILL to each process group: nothing may outlive the grace period
            super()._killall(force=True)
            return
        self._stop_requested = self._stop_requested or time.monotonic()
        for name, process in self._processes.items():
            if "returncode" in process or "pid" not in process:
                continue
            self._system_print(f"sending SIGTERM to {name} (pid {process['pid']})\n")
            with contextlib.suppress(ProcessLookupError):
                os.kill(process["pid"], signal.SIGTERM)


def main(argv: list[str] | None = None) -> Any:
    honcho.manager.KILL_WAIT = grace_seconds(sys.argv[1:] if argv is None else argv)
    honcho.command.Manager = GracefulManager  # type: ignore[attr-defined,misc]
    return honcho.command.main(argv)


if __name__ == "__main__":
    main()
