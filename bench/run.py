"""The one entry point: `python -m bench [--quick] [--strict]` (make bench, make bench-quick).

Phases, in one run on one machine: seed -> web (app and baseline under wrk) -> pipeline on
the ORM and the Redis broker against a plain loop -> scaling with a 2 s provider -> memory.
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

from . import processes, report, servers, web, workers
from .load import LoadSettings, write_status_script
from .profiles import FULL, QUICK, Profile
from .workdir import BASE_DIR, PYTHON, WorkDir

BENCH_DIR = Path(__file__).resolve().parent
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
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


def web_phase(profile: Profile, workdir: WorkDir, seed: dict) -> dict:
    servers.collect_static(workdir)
    signin = ["bench.baseline.signin", "--database", str(workdir.baseline_database)]
    baseline_session_key = workers.client(workdir, signin, "baseline-signin")["session_key"]
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
        env = {"Q_WORKERS": count, "OFFLINE_DELAY_SECONDS": delay}
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
    web_runs = web_phase(profile, workdir, seed)
    peaks: list[int] = []
    pipeline = pipeline_phase(profile, workdir, peaks)
    scaling = scaling_phase(profile, workdir, peaks)
    memory = {"worker_peak_rss_kb": max(peaks), "download": download_phase(workdir)}
    web_summary = report.summarize_web(web_runs)
    ratios = report.compute_ratios(web_summary, pipeline, scaling)
    measured = report.figures(pipeline, memory)
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
        "web": web_summary,
        "pipeline": pipeline,
        "scaling": scaling,
        "memory": memory,
        "seed": {key: value for key, value in seed.items() if key not in ("session_key", "api_token")},
    }


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
    missed = [name for name, target in results["targets"].items() if not target["pass"]]
    if missed:
        log(f"targets missed: {', '.join(missed)}")
    return 2 if args.strict and missed else 0
