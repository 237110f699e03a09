"""The one entry point: `python -m bench [--quick] [--strict]` (make bench, make bench-quick).

Phases, in one run on one machine: seed -> web (app and baseline under wrk) -> serving (the
ASGI server against gthread, and the poll with many event streams open) -> pipeline on
the ORM and the Redis broker against a plain loop -> scaling with a 2 s provider ->
scheduling (a newcomer behind four queues; vendor jobs on a fake DashScope) -> time to visible
(Generate -> first picture through the event stream, on the real server) -> memory.
Writes bench/results.json (results-quick.json with --quick) and prints the table.

Exit status: 0 when the harness measured everything validly (targets may still miss; see
"targets" in the results), 1 when the harness failed or a measurement is invalid (errors,
responses other than 200, failed tasks, missing keys), 2 with --strict when a target missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from . import inprocess, processes, report, servers, serving, web, workers
from .fake_dashscope import FakeDashScope
from .load import LoadSettings, write_status_script
from .profiles import FULL, QUICK, Profile
from .workdir import BASE_DIR, PYTHON, WorkDir

BENCH_DIR = Path(__file__).resolve().parent
SCALE_RESULTS = BENCH_DIR / "results-scale.json"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
# The scheduling phase (docs/PERFORMANCE.md): the embedded default of 2 workers; 4 people with 4
# tasks each, then a newcomer, under OFFLINE_CONCURRENCY=4; 9 vendor jobs under
# DASHSCOPE_CONCURRENCY=9, looked at from 0.5 s on.
SCHEDULING_WORKERS = 2
FAIRNESS_PEOPLE = 4
FAIRNESS_TASKS_EACH = 4
FAIRNESS_CONCURRENCY = 4
VENDOR_JOBS = 9
VENDOR_POLL_SECONDS = 0.5
# Time to visible: the offline provider's own delay for each task.
LIVE_TASK_SECONDS = 0.3
_started = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - _started:6.1f}s] {message}", flush=True)


def seed_phase(profile: Profile, workdir: WorkDir) -> dict:
    log(
        f"seeding {profile.users} users and {profile.images:,} images ({profile.measured_images:,} for the measured user)"
    )
    seed = workers.client(
        workdir,
        [
            "bench.seed",
            "--users",
            str(profile.users),
            "--images",
            str(profile.images),
            "--measured",
            str(profile.measured_images),
        ],
        "seed",
    )
    log(f"  seeded in {seed['seed_seconds']} s (migrate {seed['migrate_seconds']} s): {seed['counts']}")
    return seed


def sign_in_baseline(workdir: WorkDir) -> str:
    signin = ["bench.baseline.signin", "--database", str(workdir.baseline_database)]
    return workers.client(workdir, signin, "baseline-signin")["session_key"]


def web_phase(profile: Profile, workdir: WorkDir, seed: dict, baseline_session_key: str) -> dict:
    servers.collect_static(workdir)
    app = servers.start_app(workdir, servers.free_port())
    baseline = servers.start_baseline(workdir, servers.free_port())
    load = LoadSettings(profile.wrk_threads, profile.wrk_connections, profile.wrk_seconds)
    log(
        f"loading app and baseline: wrk -t{load.threads} -c{load.connections} -d{load.seconds}s, {profile.web_rounds} round(s)"
    )
    try:
        runs = web.measure(
            app.url,
            baseline.url,
            seed,
            baseline_session_key,
            load,
            profile.warmup_seconds,
            profile.web_rounds,
            write_status_script(workdir.root),
            log,
        )
    finally:
        app.stop()
        baseline.stop()
    return {key: [result.as_dict() for result in results] for key, results in runs.items()}


def inprocess_phase(profile: Profile, workdir: WorkDir, seed: dict, baseline_session_key: str) -> dict:
    settings = inprocess.Settings(profile.inprocess_rounds, profile.inprocess_alternations, profile.inprocess_batch)
    log(
        f"in-process: each endpoint against its signed-in yardstick, {settings.rounds} round(s) of "
        f"{settings.alternations} A/B batches of {settings.batch} requests"
    )
    return inprocess.measure(workdir, seed, baseline_session_key, settings, log)


def serving_phase(profile: Profile, workdir: WorkDir, seed: dict) -> dict:
    settings = serving.Settings(
        load=LoadSettings(profile.wrk_threads, profile.wrk_connections, profile.serving_seconds),
        rounds=profile.serving_rounds,
        warmup_seconds=profile.warmup_seconds,
        streams=profile.serving_streams,
        stream_rounds=profile.serving_stream_rounds,
    )
    result = serving.measure_serving(workdir, seed, settings, log)
    for key, value in serving.serving_figures(result).items():
        log(f"  {key} {value}")
    return result


def pipeline_phase(profile: Profile, workdir: WorkDir, peaks: list[int]) -> dict:
    count = profile.pipeline_tasks
    timeout = ["--timeout", str(60 + count * 2)]
    log(f"pipeline: {count} tasks as a plain loop in one process")
    results = {"orm": {"loop": workers.client(workdir, ["bench.pipeline", "loop", "--tasks", str(count)], "loop")}}
    for broker, env in (("orm", {}), ("redis", {"REDIS_URL": REDIS_URL})):
        if broker == "redis":
            workers.flush_redis(REDIS_URL)
        log(f"pipeline: {count} tasks one at a time, then {count} at once, through a qcluster on the {broker} broker")
        with workers.qcluster(workdir, broker, **env) as sampler:
            for mode in ("sequential", "burst"):
                argv = ["bench.pipeline", "cluster", "--tasks", str(count), "--mode", mode, *timeout]
                results.setdefault(broker, {})[mode] = workers.client(workdir, argv, f"{broker}-{mode}", **env)
        peaks.append(sampler.peak_kb)
        for mode, run in results[broker].items():
            log(
                f"  {broker} {mode:<10} {run['tasks_per_second']:7.2f} tasks/s  p50 {run['p50_ms']:7.1f} ms  p95 {run['p95_ms']:7.1f} ms"
            )
    return results


def scaling_phase(profile: Profile, workdir: WorkDir, peaks: list[int]) -> dict:
    results = {}
    delay = report.PROVIDER_SECONDS
    for count in profile.scaling_workers:
        tasks = count * profile.scaling_rounds
        log(f"scaling: {tasks} tasks on {count} workers, provider {delay:g} s")
        # Workers are measured here, not the provider's limit (4 by default): room for every worker.
        env = {"Q_WORKERS": count, "OFFLINE_DELAY_SECONDS": delay, "OFFLINE_CONCURRENCY": count}
        with workers.qcluster(workdir, f"scale-{count}", **env) as sampler:
            argv = [
                "bench.pipeline",
                "cluster",
                "--tasks",
                str(tasks),
                "--mode",
                "burst",
                "--timeout",
                str(120 + tasks * 4),
            ]
            run = workers.client(workdir, argv, f"scale-{count}", **env)
        peaks.append(sampler.peak_kb)
        run["workers"] = count
        run["efficiency"] = round(report.scaling_efficiency(run["tasks_per_second"], count, delay), 3)
        results[str(count)] = run
        log(f"  {count} workers: {run['tasks_per_second']:.2f} tasks/s, efficiency {run['efficiency']:.3f}")
    return results


def scheduling_phase(profile: Profile, workdir: WorkDir, peaks: list[int]) -> dict:
    started = time.monotonic()
    fairness = fairness_run(profile, workdir, peaks)
    jobs = vendor_jobs_run(profile, workdir, peaks)
    return {"fairness": fairness, "async": jobs, "seconds": round(time.monotonic() - started, 1)}


def fairness_run(profile: Profile, workdir: WorkDir, peaks: list[int]) -> dict:
    """4 people queue 4 tasks each; once the first are running a fifth queues one: its wait. A
    sixth (context) queues one once all four have been served (bench/scheduling.py)."""
    delay, workers_count = profile.fairness_task_seconds, SCHEDULING_WORKERS
    queued = FAIRNESS_PEOPLE * FAIRNESS_TASKS_EACH
    log(
        f"scheduling: {FAIRNESS_PEOPLE} people queue {FAIRNESS_TASKS_EACH} tasks each ({delay:g} s provider, "
        f"{workers_count} workers), then a newcomer queues one"
    )
    env = {"Q_WORKERS": workers_count, "OFFLINE_DELAY_SECONDS": delay, "OFFLINE_CONCURRENCY": FAIRNESS_CONCURRENCY}
    with workers.qcluster(workdir, "fairness", **env) as sampler:
        argv = [
            "bench.scheduling",
            "fairness",
            "--people",
            str(FAIRNESS_PEOPLE),
            "--each",
            str(FAIRNESS_TASKS_EACH),
            "--workers",
            str(workers_count),
            "--timeout",
            str(60 + queued * delay),
        ]
        run = workers.client(workdir, argv, "fairness", **env)
    peaks.append(sampler.peak_kb)
    run.update(task_seconds=delay, offline_concurrency=FAIRNESS_CONCURRENCY)
    fifo = report.fifo_wait_seconds(run["tasks_ahead"], run["workers"], delay)
    log(
        f"  the newcomer waited {run['wait_seconds']:.2f} s ({run['wait_seconds'] / delay:.2f} tasks; "
        f"first come, first served: about {fifo:g} s), started {run['start_position']} of {run['tasks']}; "
        f"the latecomer {run['latecomer']['wait_seconds']:.2f} s"
    )
    return run


def vendor_jobs_run(profile: Profile, workdir: WorkDir, peaks: list[int]) -> dict:
    """9 DashScope jobs on 2 workers against a fake vendor whose jobs take J seconds."""
    seconds, workers_count = profile.vendor_job_seconds, SCHEDULING_WORKERS
    log(f"scheduling: {VENDOR_JOBS} vendor jobs of {seconds:g} s on {workers_count} workers (a fake DashScope)")
    workdir.logs.mkdir(parents=True, exist_ok=True)
    with FakeDashScope(seconds, log_path=workdir.logs / "fake-dashscope.log") as vendor:
        env = {
            "Q_WORKERS": workers_count,
            "DASHSCOPE_API_KEY": "x",
            "DASHSCOPE_BASE_URL": vendor.base_url,
            "DASHSCOPE_SELF_HOSTED": "true",
            "DASHSCOPE_POLL_INTERVAL_SECONDS": VENDOR_POLL_SECONDS,
            "DASHSCOPE_CONCURRENCY": VENDOR_JOBS,
        }
        with workers.qcluster(workdir, "vendor-jobs", **env) as sampler:
            argv = ["bench.scheduling", "jobs", "--jobs", str(VENDOR_JOBS), "--timeout", str(60 + 4 * seconds)]
            run = workers.client(workdir, argv, "vendor-jobs", **env)
        peaks.append(sampler.peak_kb)
        run.update(
            job_seconds=seconds,
            workers=workers_count,
            concurrency=VENDOR_JOBS,
            poll_interval_seconds=VENDOR_POLL_SECONDS,
            vendor=vendor.stats(),
        )
    stats = run["vendor"]
    log(
        f"  {stats['in_flight_max']} jobs at the vendor at once, all {run['tasks']} done in {run['seconds']:.2f} s "
        f"({run['seconds'] / seconds:.2f} jobs), {stats['submissions']} submissions, {stats['looks']} looks"
    )
    return run


def live_phase(profile: Profile, workdir: WorkDir, seed: dict, peaks: list[int]) -> dict:
    count = profile.live_tasks
    # One person submits them all, faster than GENERATE_RATE allows a person.
    env = {"OFFLINE_DELAY_SECONDS": LIVE_TASK_SECONDS, "GENERATE_RATE": "1000000/s"}
    log(f"time to visible: {count} tasks of {LIVE_TASK_SECONDS:g} s, one at a time, with the page's event stream open")
    app = servers.start_app(workdir, servers.free_port(), **env)
    try:
        with workers.qcluster(workdir, "live", **env) as sampler:
            argv = ["bench.live", "--url", app.url, "--session", seed["session_key"], "--token", seed["api_token"]]
            result = workers.client(workdir, [*argv, "--tasks", str(count)], "live")
        peaks.append(sampler.peak_kb)
    finally:
        app.stop()
    result["provider_seconds"] = LIVE_TASK_SECONDS
    log(
        f"  visible p50 {result['visible_p50_ms']:.0f} ms p95 {result['visible_p95_ms']:.0f} ms; the task's own "
        f"p50 {result['task_p50_ms']:.0f} ms; added p50 {result['added_p50_ms']:.0f} ms p95 {result['added_p95_ms']:.0f} ms"
    )
    return result


def download_phase(workdir: WorkDir) -> dict:
    directory = workdir.data("download")
    made = workers.client(workdir, ["bench.memory", "make-image", "--dir", str(directory)], "make-image")
    port = servers.free_port()
    server = processes.start(
        "http.server",
        [PYTHON, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(directory)],
        env=dict(os.environ),
        cwd=BASE_DIR,
        log_path=workdir.logs / "http.server.log",
    )
    try:
        processes.wait_for(lambda: _listening(port), timeout=20, what="http.server start")
        base = f"http://127.0.0.1:{port}"
        argv = ["bench.memory", "download", "--url", f"{base}/big.png", "--warmup-url", f"{base}/small.png"]
        result = workers.client(workdir, argv, "download")
    finally:
        server.stop()
    log(f"download: a {made['bytes'] / 2**20:.1f} MiB image raised max RSS by {result['increase_kb'] / 1024:.1f} MiB")
    return result


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def run(profile: Profile, workdir: WorkDir) -> dict:
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    seed = seed_phase(profile, workdir)
    baseline_session_key = sign_in_baseline(workdir)
    web_runs = web_phase(profile, workdir, seed, baseline_session_key)
    in_process = inprocess_phase(profile, workdir, seed, baseline_session_key)
    served = serving_phase(profile, workdir, seed)
    # The pages are measured: the polled task's part is over before any worker runs.
    workers.client(workdir, ["bench.pipeline", "stop-polled", "--task", seed["poll_task_id"]], "stop-polled")
    peaks: list[int] = []
    pipeline = pipeline_phase(profile, workdir, peaks)
    scaling = scaling_phase(profile, workdir, peaks)
    scheduling = scheduling_phase(profile, workdir, peaks)
    live = live_phase(profile, workdir, seed, peaks)
    memory = {"worker_peak_rss_kb": max(peaks), "download": download_phase(workdir)}
    web_summary = report.summarize_web(web_runs)
    scale = latest_scale_run()
    ratios = report.compute_ratios(in_process, pipeline, scaling, scheduling, live, scale)
    measured = report.figures(pipeline, memory, scheduling, live, served)
    return {
        "profile": profile.name,
        "started_at": started_at,
        "duration_seconds": round(time.monotonic() - _started, 1),
        "machine": machine(),
        "load": {
            "threads": profile.wrk_threads,
            "connections": profile.wrk_connections,
            "seconds": profile.wrk_seconds,
            "rounds": profile.web_rounds,
        },
        "ratios": ratios,
        "figures": measured,
        "targets": report.check_targets(ratios, measured),
        "noisy": report.noisy_figures(web_summary, in_process),
        "web_inprocess": in_process,
        "web": web_summary,
        "serving": served,
        "scale": scale,
        "pipeline": pipeline,
        "scaling": scaling,
        "scheduling": scheduling,
        "live": live,
        "memory": memory,
        "seed": {key: value for key, value in seed.items() if key not in ("session_key", "api_token")},
    }


def latest_scale_run() -> dict | None:
    """The scale-out run takes PostgreSQL, Redis and minutes of its own (`make bench-scale`):
    its summary comes from the latest run's file, dated, rather than from this run."""
    if not SCALE_RESULTS.exists():
        return None
    scale = json.loads(SCALE_RESULTS.read_text())
    return {key: value for key, value in scale.items() if not isinstance(value, (dict, list))}


def machine() -> dict:
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.splitlines()[:1]
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "wrk": wrk[0] if wrk else "",
    }


def problems_in(results: dict) -> list[str]:
    """What makes a run invalid, as opposed to a target it missed."""
    problems = [
        f"{key}: a wrk run had responses other than 200 or socket errors"
        for key, row in results["web"].items()
        if not all(run["valid"] for run in row["runs"])
    ]
    for name, runs in [("pipeline " + b, r) for b, r in results["pipeline"].items()] + [
        ("scaling", results["scaling"])
    ]:
        problems += [f"{name} {mode}: {run['failed']} tasks failed" for mode, run in runs.items() if run["failed"]]
    problems += [f"ratios: missing or unexpected key {key}" for key in report.missing_ratio_keys(results)]
    scheduling = results["scheduling"]
    problems += [
        f"scheduling {name}: {scheduling[name]['failed']} tasks failed"
        for name in ("fairness", "async")
        if scheduling[name]["failed"]
    ]
    problems += [
        f"scheduling async: the fake DashScope was asked {request}"
        for request in scheduling["async"]["vendor"]["unexpected_requests"]
    ]
    problems += [f"figures: missing {key}" for key in report.SCHEDULING_FIGURES if key not in results["figures"]]
    problems += [f"figures: missing {key}" for key in report.SERVING_FIGURES if key not in results["figures"]]
    problems += serving.problems_in(results["serving"])
    return problems


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the short smoke run (CI)")
    parser.add_argument("--strict", action="store_true", help="exit 2 when a target is missed")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (database, logs)")
    parser.add_argument("--output", type=Path, help="where to write the results (default bench/results[-quick].json)")
    args = parser.parse_args(argv)
    profile = QUICK if args.quick else FULL
    output = args.output or BENCH_DIR / profile.results_file
    # SIGTERM (a CI timeout, say) unwinds like Ctrl-C, so the finally below stops everything.
    signal.signal(signal.SIGTERM, _interrupt)
    workdir = WorkDir.create()
    log(f"{profile.name} benchmark in {workdir.root}")
    try:
        results = run(profile, workdir)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except Exception:
        traceback.print_exc()
        log(f"the benchmark itself failed; logs are in {workdir.root / 'logs'}")
        args.keep = True
        return 1
    finally:
        processes.stop_all()
        if not args.keep:
            workdir.remove()
    output.write_text(json.dumps(results, indent=2) + "\n")
    print("\n" + report.table(results) + "\n", flush=True)
    log(f"results written to {output}")
    problems = problems_in(results)
    for problem in problems:
        print(f"INVALID: {problem}", file=sys.stderr)
    if problems:
        return 1
    for figure in results["noisy"]:
        log(f"NOISY: {figure}: its rounds disagree by more than {report.SPREAD_LIMIT:.0%}")
    missed = [name for name, target in results["targets"].items() if not target["pass"]]
    if missed:
        log(f"targets missed: {', '.join(missed)}")
    return 2 if args.strict and missed else 0
