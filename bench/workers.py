"""Real worker clusters (`manage.py qcluster`) for the pipeline runs, and their peak memory."""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from . import processes
from .workdir import BASE_DIR, PYTHON, WorkDir

# django-q2 logs this once the sentinel guards its workers (as tests/cluster.py waits for).
READY_MARKER = re.compile(r"Q Cluster \S+( \[[^]]*\])? running")


@dataclass
class PeakSampler:
    """Samples VmHWM of every process in a group: the peak survives a worker's exit only if
    it was sampled before, so sample often (django-q2 recycles workers past max_rss)."""

    pgid: int
    interval: float = 0.2
    peak_kb: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def sample(self) -> None:
        for pid in processes.group_members(self.pgid):
            self.peak_kb = max(self.peak_kb, processes.peak_rss_kb(pid))

    def run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> PeakSampler:
        self._thread = threading.Thread(target=self.run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.sample()
        self._stop.set()
        self._thread.join()


def start_qcluster(workdir: WorkDir, label: str, **env: object) -> processes.Child:
    """A `manage.py qcluster` in its own process group, once its workers are guarded; the caller
    stops it (or, in the scale-out run, SIGKILLs the group as a lost machine would go)."""
    child = processes.start(
        f"qcluster-{label}",
        [PYTHON, "manage.py", "qcluster"],
        env=workdir.app_env(**env),
        cwd=BASE_DIR,
        log_path=workdir.logs / f"qcluster-{label}.log",
    )
    try:
        processes.wait_for(lambda: _ready(child), timeout=60, interval=0.05, what=f"qcluster ({label}) start")
    except BaseException:
        child.stop()
        raise
    return child


@contextmanager
def qcluster(workdir: WorkDir, label: str, **env: object) -> Iterator[PeakSampler]:
    child = start_qcluster(workdir, label, **env)
    try:
        with PeakSampler(child.pid) as sampler:
            yield sampler
    finally:
        code = child.stop(grace=30.0)
        if code not in (0, -15):
            raise RuntimeError(f"qcluster ({label}) exited with {code}:\n{child.output()}")


def _ready(child: processes.Child) -> bool:
    if not child.is_running():
        raise RuntimeError(f"{child.name} exited with {child.process.returncode}:\n{child.output()}")
    return bool(READY_MARKER.search(child.output(tail=100_000)))


def client(workdir: WorkDir, argv: list[str], label: str, **env: object) -> dict:
    """Run a `python -m bench.<module>` phase in the app's environment; its JSON result."""
    out = workdir.data(f"{label}.json")
    log = workdir.logs / f"{label}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as handle:
        completed = subprocess.run(
            [PYTHON, "-m", *argv, "--out", str(out)],
            cwd=BASE_DIR,
            env=workdir.app_env(**env),
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    if completed.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} failed ({completed.returncode}):\n{log.read_text(errors='replace')[-4000:]}"
        )
    return json.loads(out.read_text())


def flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url, socket_connect_timeout=5).flushdb()
