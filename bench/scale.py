"""The scale-out run (`make bench-scale`): Atelier as several machines would run it, on one.

    python -m bench.scale [--tasks 1000] [--people 50] [--kill-tasks 200] [--output FILE]

PostgreSQL (a fresh database, `bench_scale`) and Redis (db 10, flushed) are what the machines
share: the database, the broker and the cache. On them: 2 web processes (gunicorn, the
Procfile's command) and 2 worker clusters (`manage.py qcluster`, 4 workers each) on the
offline provider taking 2 s a task. 50 seeded people submit 1,000 tasks over HTTP
(POST /api/v1/generate, their API tokens), spread over both web processes. Then:

- no task lost (every row ends `completed`), none run twice (two image sets, or a second
  send while no worker died: `attempts` > 1);
- throughput = tasks / (last finish - first start), efficiency = throughput / (8 workers / 2 s);
- while the workers are busy: the in-process gallery and poll ratios (bench/inprocess.py,
  against the signed-in yardsticks) and a short wrk on one web process.

Then the kill run: 200 more tasks, and one cluster's whole process group SIGKILLed 6 s in,
while it holds tasks. The other cluster's dispatcher takes them back once their heartbeat is
older than HEARTBEAT_TIMEOUT_SECONDS; every task must still end, none twice (a task the dead
cluster was running is sent again: reported apart, as re-runs of held tasks).

GENERATE_RATE (10/m a person by default) is raised for the run: 20 tasks a person at once.
Results: bench/results-scale.json; `python -m bench` reads its top-level figures.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from . import inprocess, processes, report, servers, workers
from .load import LoadSettings, run_wrk, write_status_script
from .web import app_endpoints
from .workdir import BASE_DIR, PYTHON, WorkDir

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results-scale.json"
SERVER_URL = "postgres://postgres@127.0.0.1:5432"
DATABASE = "bench_scale"
REDIS_URL = "redis://127.0.0.1:6379/10"
FINAL = ("completed", "failed", "canceled")
# Measured under load: the pages a person keeps open while their tasks run.
UNDER_LOAD_KEYS = ("gallery_first_page", "task_poll")
_started = time.monotonic()


@dataclass(frozen=True)
class TaskRow:
    """One submitted task as it ended (bench.scale_tasks reads them)."""

    id: str
    status: str
    attempts: int
    num_images: int
    images: int
    distinct_indexes: int
    started_at: float | None  # epoch seconds
    finished_at: float | None


@dataclass(frozen=True)
class ScaleSettings:
    tasks: int = 1000
    people: int = 50
    provider_seconds: float = 2.0
    web_processes: int = 2
    clusters: int = 2
    workers_per_cluster: int = 4
    kill_tasks: int = 200
    kill_after_seconds: float = 6.0
    # None keeps the app's defaults (5 s beats, taken back after 30 s); a quick test shortens them
    heartbeat_seconds: float | None = None
    heartbeat_timeout_seconds: float | None = None
    # the seed: the measured person's gallery, and the images of everyone else together
    measured_images: int = 5000
    images: int = 10000
    # under load: in-process rounds, A/B batches per round, requests per batch; then wrk
    inprocess_rounds: int = 3
    inprocess_alternations: int = 3
    inprocess_batch: int = 10
    wrk_seconds: int = 5
    wait_before_measuring: float = 5.0
    server_url: str = SERVER_URL
    database: str = DATABASE
    redis_url: str = REDIS_URL

    @property
    def workers(self) -> int:
        return self.clusters * self.workers_per_cluster

    @property
    def database_url(self) -> str:
        return f"{self.server_url.rstrip('/')}/{self.database}"


def efficiency(tasks_per_second: float, workers_count: int, provider_seconds: float) -> float:
    """Throughput over the ideal: every worker of every cluster busy with the provider."""
    return report.scaling_efficiency(tasks_per_second, workers_count, provider_seconds)


def throughput(rows: list[TaskRow]) -> dict:
    """Completed tasks per second from the first start to the last finish."""
    done = [row for row in rows if row.status == "completed" and row.started_at and row.finished_at]
    if not done:
        return {"completed": 0, "seconds": 0.0, "tasks_per_second": 0.0, "first_started_at": 0.0}
    first = min(row.started_at for row in done if row.started_at)
    last = max(row.finished_at for row in done if row.finished_at)
    seconds = last - first
    return {
        "first_started_at": first,
        "completed": len(done),
        "seconds": round(seconds, 3),
        "tasks_per_second": round(len(done) / seconds, 3) if seconds > 0 else 0.0,
    }


def window_throughput(finished_at: list[float], start: float, end: float) -> float:
    """Tasks finished per second between start and end (epoch seconds)."""
    if end <= start:
        return 0.0
    return round(sum(1 for at in finished_at if start <= at < end) / (end - start), 3)


def phase_throughput(finished_at: list[float], first_start: float, measuring: tuple[float, float]) -> dict:
    """Throughput while the pages were measured (which takes CPU from the workers on a small
    machine) and from then to the last finish: context beside the run's single figure."""
    measured_from, measured_to = measuring
    last = max(finished_at, default=measured_to)
    return {
        "before_measuring": window_throughput(finished_at, first_start, measured_from),
        "while_measuring": window_throughput(finished_at, measured_from, measured_to),
        "after_measuring": window_throughput(finished_at, measured_to, last + 0.001),
        "measuring_seconds": round(measured_to - measured_from, 1),
    }


def audit(submitted: list[str], rows: list[TaskRow]) -> dict:
    """Lost: a submitted task that did not end `completed` (missing, failed, still running).
    Ran twice: a task with more pictures than it asked for, or one index drawn twice (two
    completed runs). Re-sent: attempts > 1 (the kill run expects these of the tasks it held)."""
    by_id = {row.id: row for row in rows}
    lost = [task_id for task_id in submitted if task_id not in by_id or by_id[task_id].status != "completed"]
    twice = [row.id for row in rows if row.images > row.num_images or row.distinct_indexes < row.images]
    return {
        "tasks": len(submitted),
        "lost": len(lost),
        "ran_twice": len(twice),
        "re_sent": sum(1 for row in rows if row.attempts > 1),
        "statuses": {
            status: sum(1 for row in rows if row.status == status) for status in sorted({r.status for r in rows})
        },
        "lost_ids": lost[:20],
        "ran_twice_ids": twice[:20],
    }


def summary(settings: ScaleSettings, started_at: str, main: dict, kill: dict, under_load: dict) -> dict:
    """The results file: top-level figures (`python -m bench` copies these) and the details."""
    tasks_per_second = main["tasks_per_second"]
    return {
        "started_at": started_at,
        "tasks": main["tasks"],
        "people": settings.people,
        "web_processes": settings.web_processes,
        "clusters": settings.clusters,
        "workers": settings.workers,
        "provider_seconds": settings.provider_seconds,
        "tasks_per_second": tasks_per_second,
        "ideal_tasks_per_second": settings.workers / settings.provider_seconds,
        "scale_out_efficiency": round(efficiency(tasks_per_second, settings.workers, settings.provider_seconds), 3),
        "lost": main["lost"],
        "ran_twice": main["ran_twice"],
        "efficiency_after_measuring": main.get("phases", {}).get("efficiency_after_measuring"),
        "gallery_ratio_under_load": under_load.get("inprocess", {}).get("gallery_first_page", {}).get("ratio"),
        "poll_ratio_under_load": under_load.get("inprocess", {}).get("task_poll", {}).get("ratio"),
        "kill_tasks": kill.get("tasks"),
        "kill_lost": kill.get("lost"),
        "kill_ran_twice": kill.get("ran_twice"),
        "kill_reclaimed_within_seconds": kill.get("kill", {}).get("reclaimed_within_seconds"),
        "run": main,
        "kill_run": kill,
        "under_load": under_load,
        "settings": asdict(settings),
    }


def problems_in(results: dict) -> list[str]:
    """What makes the run fail: lost or twice-run tasks, a kill that did not happen."""
    problems = []
    for name, run in (("run", results["run"]), ("kill run", results["kill_run"])):
        if run.get("lost"):
            problems.append(f"{name}: {run['lost']} tasks lost")
        if run.get("ran_twice"):
            problems.append(f"{name}: {run['ran_twice']} tasks ran twice")
    kill = results["kill_run"].get("kill")
    if results["kill_run"] and not (kill and kill["killed"] and kill["held_at_kill"]):
        problems.append("kill run: the cluster was not killed while holding a task")
    return problems


def log(message: str) -> None:
    print(f"[{time.monotonic() - _started:6.1f}s] {message}", flush=True)


class ScaleWorkDir(WorkDir):
    """The bench's scratch directory, with every app process on the shared PostgreSQL and Redis."""

    database_url: str = ""
    redis_url: str = ""

    def app_env(self, **overrides: object) -> dict[str, str]:
        shared = {"DATABASE_URL": self.database_url, "REDIS_URL": self.redis_url}
        return super().app_env(**{**shared, **overrides})


def reset_database(settings: ScaleSettings, *, create: bool = True) -> None:
    """Drop the run's database (its sessions too) and, unless told not to, create it empty."""
    import psycopg

    with psycopg.connect(f"{settings.server_url.rstrip('/')}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{settings.database}" WITH (FORCE)')
        if create:
            connection.execute(f'CREATE DATABASE "{settings.database}"')


def run_scale(settings: ScaleSettings, workdir: ScaleWorkDir) -> dict:
    """The whole scale-out run: shared services afresh, the processes, the run, the kill run."""
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    workdir.database_url, workdir.redis_url = settings.database_url, settings.redis_url
    seed, tokens, baseline_session_key = prepare(settings, workdir)
    env = app_settings(settings)
    log(
        f"{settings.web_processes} web processes, {settings.clusters} clusters of {settings.workers_per_cluster} workers"
    )
    webs = [
        servers.start_app(workdir, servers.free_port(), name=f"app-{n + 1}", **env)
        for n in range(settings.web_processes)
    ]
    clusters = [
        workers.start_qcluster(workdir, f"cluster-{n + 1}", Q_WORKERS=settings.workers_per_cluster, **env)
        for n in range(settings.clusters)
    ]
    urls = [web.url for web in webs]
    try:
        main, under_load = loaded_run(settings, workdir, urls, tokens, seed, baseline_session_key)
        kill = kill_run(settings, workdir, urls, tokens, clusters[-1]) if settings.kill_tasks else {}
    finally:
        for child in [*clusters, *webs]:
            child.stop(grace=30.0)
    return summary(settings, started_at, main, kill, under_load)


def prepare(settings: ScaleSettings, workdir: ScaleWorkDir) -> tuple[dict, Path, str]:
    """A fresh database and Redis, the seed, every person's API token, the yardstick's session."""
    log(f"fresh database {settings.database}, Redis {settings.redis_url} flushed")
    reset_database(settings)
    workers.flush_redis(settings.redis_url)
    counts = ["--users", str(settings.people), "--images", str(settings.images)]
    seed = workers.client(workdir, ["bench.seed", *counts, "--measured", str(settings.measured_images)], "seed")
    log(f"  seeded {seed['counts']}")
    tokens = workdir.data("tokens.json")
    made = workers.client(workdir, ["bench.scale_tasks", "tokens", "--people", str(settings.people)], "tokens")
    tokens.write_text(json.dumps(made))
    signin = ["bench.baseline.signin", "--database", str(workdir.baseline_database)]
    baseline_session_key = workers.client(workdir, signin, "baseline-signin")["session_key"]
    servers.collect_static(workdir)
    return seed, tokens, baseline_session_key


def app_settings(settings: ScaleSettings) -> dict[str, object]:
    """What the web processes and clusters get beyond the shared services."""
    env: dict[str, object] = {
        "OFFLINE_DELAY_SECONDS": settings.provider_seconds,
        # Every worker may call the provider at once; the seed's polled task holds one slot.
        "OFFLINE_CONCURRENCY": settings.workers + 1,
        # Each person sends all their tasks within seconds: far past the 10 a minute people get.
        "GENERATE_RATE": "1000000/s",
    }
    if settings.heartbeat_seconds is not None:
        env["HEARTBEAT_SECONDS"] = settings.heartbeat_seconds
    if settings.heartbeat_timeout_seconds is not None:
        env["HEARTBEAT_TIMEOUT_SECONDS"] = settings.heartbeat_timeout_seconds
    return env


def loaded_run(
    settings: ScaleSettings, workdir: ScaleWorkDir, urls: list[str], tokens: Path, seed: dict, baseline_session_key: str
) -> tuple[dict, dict]:
    """The tasks, with the pages measured while the workers are busy; the run's audit and figures."""
    log(f"run: {settings.tasks} tasks from {settings.people} people, provider {settings.provider_seconds:g} s")
    submitter = start_submit(workdir, settings, urls, tokens, settings.tasks, "run")
    time.sleep(settings.wait_before_measuring)
    measuring_from = time.time()
    under_load = measure_under_load(workdir, settings, seed, baseline_session_key, urls[0])
    measuring_to = time.time()
    under_load["tasks_still_running_after"] = submitter.is_running()
    main = finish_submit(workdir, submitter, "run")
    finished_at = main.pop("finished_at")
    main["phases"] = phase_throughput(finished_at, main.pop("first_started_at"), (measuring_from, measuring_to))
    main["phases"]["efficiency_after_measuring"] = round(
        efficiency(main["phases"]["after_measuring"], settings.workers, settings.provider_seconds), 3
    )
    log(
        f"  {main['completed']}/{main['tasks']} completed, {main['tasks_per_second']:.2f} tasks/s "
        f"(ideal {settings.workers / settings.provider_seconds:g}), lost {main['lost']}, twice {main['ran_twice']}"
    )
    return main, under_load


def kill_run(
    settings: ScaleSettings, workdir: ScaleWorkDir, urls: list[str], tokens: Path, victim: processes.Child
) -> dict:
    """More tasks, and the victim cluster SIGKILLed while it holds some: its audit and the kill's figures."""
    log(f"kill run: {settings.kill_tasks} tasks, {victim.name} SIGKILLed {settings.kill_after_seconds:g} s in")
    kill_argv = ["--kill-pgid", str(victim.pid), "--kill-after", str(settings.kill_after_seconds)]
    submitter = start_submit(workdir, settings, urls, tokens, settings.kill_tasks, "kill", kill_argv)
    kill = finish_submit(workdir, submitter, "kill")
    del kill["finished_at"], kill["first_started_at"]
    details = kill.get("kill", {})
    log(
        f"  {victim.name} killed at {details.get('killed_after_seconds')} s holding "
        f"{details.get('held_at_kill')}; taken back within {details.get('reclaimed_within_seconds')} s; "
        f"all ended {details.get('all_ended_seconds_after_kill')} s after; "
        f"lost {kill['lost']}, twice {kill['ran_twice']}"
    )
    return kill


def start_submit(
    workdir: ScaleWorkDir,
    settings: ScaleSettings,
    urls: list[str],
    tokens: Path,
    count: int,
    label: str,
    extra: list[str] | None = None,
) -> processes.Child:
    argv = ["bench.scale_tasks", "submit", "--tokens", str(tokens), "--tasks", str(count)]
    argv += [arg for url in urls for arg in ("--url", url)]
    timeout = 300 + count * settings.provider_seconds * 2 / settings.workers
    argv += ["--timeout", str(timeout), *(extra or []), "--out", str(workdir.data(f"{label}.json"))]
    return processes.start(
        f"submit-{label}",
        [PYTHON, "-m", *argv],
        env=workdir.app_env(),
        cwd=BASE_DIR,
        log_path=workdir.logs / f"submit-{label}.log",
    )


def finish_submit(workdir: ScaleWorkDir, child: processes.Child, label: str) -> dict:
    code = child.process.wait()
    child.stop()
    if code != 0:
        raise RuntimeError(f"submitting ({label}) failed ({code}):\n{child.output()}")
    return json.loads(workdir.data(f"{label}.json").read_text())


def measure_under_load(
    workdir: ScaleWorkDir, settings: ScaleSettings, seed: dict, baseline_session_key: str, url: str
) -> dict:
    log("under load: in-process gallery and poll against their signed-in yardsticks")
    measured = inprocess.Settings(settings.inprocess_rounds, settings.inprocess_alternations, settings.inprocess_batch)
    ratios = inprocess.measure(workdir, seed, baseline_session_key, measured, log, keys=UNDER_LOAD_KEYS)
    gallery = app_endpoints(seed)["gallery_first_page"]
    load = LoadSettings(threads=2, connections=8, seconds=settings.wrk_seconds)
    result = run_wrk(url + gallery.path, gallery.headers, load, write_status_script(workdir.root))
    log(f"  wrk gallery on one web process: {result.requests_per_second:.1f} req/s, p50 {result.p50_ms:.1f} ms")
    return {"inprocess": ratios, "wrk_gallery_first_page": result.as_dict()}


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    defaults = ScaleSettings()
    parser.add_argument("--tasks", type=int, default=defaults.tasks)
    parser.add_argument("--people", type=int, default=defaults.people)
    parser.add_argument("--provider-seconds", type=float, default=defaults.provider_seconds)
    parser.add_argument("--workers-per-cluster", type=int, default=defaults.workers_per_cluster)
    parser.add_argument("--kill-tasks", type=int, default=defaults.kill_tasks, help="0 skips the kill run")
    parser.add_argument("--kill-after", type=float, default=defaults.kill_after_seconds)
    parser.add_argument("--server-url", default=defaults.server_url, help="PostgreSQL, without a database")
    parser.add_argument("--database", default=defaults.database, help="dropped and created afresh")
    parser.add_argument("--redis-url", default=defaults.redis_url, help="flushed first")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    settings = ScaleSettings(
        tasks=args.tasks,
        people=args.people,
        provider_seconds=args.provider_seconds,
        workers_per_cluster=args.workers_per_cluster,
        kill_tasks=args.kill_tasks,
        kill_after_seconds=args.kill_after,
        server_url=args.server_url,
        database=args.database,
        redis_url=args.redis_url,
    )
    signal.signal(signal.SIGTERM, _interrupt)
    workdir = ScaleWorkDir(WorkDir.create().root)
    log(f"scale-out run in {workdir.root}")
    try:
        results = run_scale(settings, workdir)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except Exception:
        traceback.print_exc()
        log(f"the scale-out run failed; logs are in {workdir.logs}")
        args.keep = True
        return 1
    finally:
        processes.stop_all()
        if not args.keep:
            workdir.remove()
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    log(
        f"scale_out_efficiency {results['scale_out_efficiency']} ({results['tasks_per_second']} of "
        f"{results['ideal_tasks_per_second']:g} tasks/s); results in {args.output}"
    )
    problems = problems_in(results)
    for problem in problems:
        print(f"INVALID: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
