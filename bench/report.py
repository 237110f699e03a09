"""From raw figures to ratios, targets and the table: pure functions, no processes."""

from __future__ import annotations

import statistics

from . import serving as serving_model
from .web import SIGNED_IN_YARDSTICK, YARDSTICK

RATIO_KEYS = (
    "gallery_first_page",
    "gallery_deep_page",
    "gallery_filtered",
    "explore_first_page",
    "task_poll",
    "api_task",
    "thumbnail",
    "pipeline_throughput",
    "scaling_efficiency_8",
    # what a person feels: Generate -> picture minus the task's own time (p50), the newcomer's
    # wait behind four queues, and the scale-out run's throughput against its ideal
    "time_to_visible_ms",
    "fair_wait_s",
    "scale_out_efficiency",
)
# Figures another command measures (`make bench-scale`): absent, they are a missed target
# (None), not a broken run.
MEASURED_ELSEWHERE = frozenset({"scale_out_efficiency"})
# A round-to-round spread above this says the run was too noisy for its ratio to guide tuning.
SPREAD_LIMIT = 0.15
PROVIDER_SECONDS = 2.0  # OFFLINE_DELAY_SECONDS of the scaling runs

# name: (what is compared, at least / at most, bound). The web ratios are in-process, each
# endpoint against the signed-in copy of its yardstick (bench/inprocess.py).
TARGETS = {
    "gallery_first_page": ("ratio", ">=", 0.7),
    "gallery_deep_page": ("ratio", ">=", 0.6),
    "gallery_filtered": ("ratio", ">=", 0.6),
    "explore_first_page": ("ratio", ">=", 0.7),
    "task_poll": ("ratio", ">=", 0.9),
    "api_task": ("ratio", ">=", 0.9),
    "thumbnail": ("ratio", ">=", 0.9),
    "pipeline_throughput": ("ratio", ">=", 0.7),
    "scaling_efficiency_8": ("ratio", ">=", 0.85),
    "time_to_visible_ms": ("ratio", "<=", 150.0),
    # 1.5 of the full run's 1.5 s tasks: about one task, not the 12 s of first come, first served
    "fair_wait_s": ("ratio", "<=", 2.25),
    "scale_out_efficiency": ("ratio", ">=", 0.9),
    "queue_overhead_orm_ms": ("figure", "<=", 30.0),
    "queue_overhead_redis_ms": ("figure", "<=", 10.0),
    "worker_peak_rss_mb": ("figure", "<", 300.0),
    "download_rss_increase_over_file_size": ("figure", "<=", 2.0),
    # scheduling: a newcomer waits about one task, not behind the queue; vendor jobs hold no worker
    "fairness_wait_over_task_seconds": ("figure", "<=", 1.5),
    "async_jobs_in_flight_max": ("figure", ">=", 8),
    "async_makespan_over_job_seconds": ("figure", "<=", 2.0),
    "async_submissions_per_job": ("figure", "==", 1.0),
    # the serving model (bench/serving.py): the ASGI server is not slower than gthread at the
    # same processes and threads (>= 0.95: the 5 % is run-to-run noise on a shared machine, not
    # a slowdown allowed), and 200 open event streams raise the poll's p99 by at most 20 %
    **serving_model.TARGETS,
}
LIVE_FIGURES = (
    "time_to_visible_p50_ms",
    "time_to_visible_p95_ms",
    "time_to_visible_task_p50_ms",
    "time_to_visible_task_p95_ms",
    "time_to_visible_added_p50_ms",
    "time_to_visible_added_p95_ms",
)
SERVING_FIGURES = serving_model.FIGURE_KEYS
SCHEDULING_FIGURES = (
    "fairness_wait_seconds",
    "fairness_wait_over_task_seconds",
    "fifo_wait_seconds_estimate",
    "fairness_latecomer_wait_over_task_seconds",
    "async_jobs_in_flight_max",
    "async_makespan_over_job_seconds",
    "async_submissions_per_job",
)


def summarize_web(runs: dict[str, list[dict]]) -> dict[str, dict]:
    """Each key's median over its runs, with the runs kept; endpoints get their per-round ratios
    against the two yardstick runs that bracket them (see bench.web) and the median: `ratio`
    against the issue's yardstick, `ratio_signed_in` against its signed-in copy."""
    summary = {}
    for key, results in runs.items():
        summary[key] = {
            "requests_per_second": round(statistics.median(r["requests_per_second"] for r in results), 1),
            "p50_ms": round(statistics.median(r["p50_ms"] for r in results), 2),
            "p99_ms": round(statistics.median(r["p99_ms"] for r in results), 2),
            "yardstick": YARDSTICK.get(key),
            "runs": results,
        }
    for key, yardstick in YARDSTICK.items():
        if key in runs:
            summary[key]["round_ratios"], summary[key]["ratio"] = _ratios_to(runs, key, yardstick)
    for key, yardstick in SIGNED_IN_YARDSTICK.items():
        if key not in runs or yardstick not in runs:
            continue
        if key in YARDSTICK:
            summary[key]["round_ratios_signed_in"], summary[key]["ratio_signed_in"] = _ratios_to(runs, key, yardstick)
            summary[key]["spread_signed_in"] = spread(summary[key]["round_ratios_signed_in"])
        else:  # a signed-in baseline itself, against its anonymous original
            summary[key]["yardstick"] = yardstick
            summary[key]["round_ratios"], summary[key]["ratio"] = _ratios_to(runs, key, yardstick)
    return summary


def _ratios_to(runs: dict[str, list[dict]], key: str, yardstick: str) -> tuple[list[float], float]:
    """Per round, the mean of `key`'s runs (one, or two for a baseline that brackets others) over
    the mean of the two `yardstick` runs around them; and the median of the rounds."""
    rounds = len(runs[yardstick]) // 2
    per_round = len(runs[key]) // rounds

    def mean_rps(results: list[dict]) -> float:
        return statistics.fmean(r["requests_per_second"] for r in results)

    ratios = [
        mean_rps(runs[key][n * per_round : (n + 1) * per_round]) / mean_rps(runs[yardstick][2 * n : 2 * n + 2])
        for n in range(rounds)
    ]
    return [round(ratio, 3) for ratio in ratios], round(statistics.median(ratios), 3)


def scaling_efficiency(tasks_per_second: float, workers: int, provider_seconds: float = PROVIDER_SECONDS) -> float:
    """Measured tasks/s over the ideal: every worker busy with the provider all the time."""
    return tasks_per_second / (workers / provider_seconds)


def compute_ratios(
    in_process: dict[str, dict],
    pipeline: dict,
    scaling: dict[str, dict],
    scheduling: dict,
    live: dict,
    scale: dict | None,
) -> dict[str, float | None]:
    """The issue's ratios: the web ones in-process against the signed-in yardsticks; the
    scale-out efficiency from the latest `make bench-scale` (None when there is none)."""
    ratios: dict[str, float | None] = {key: in_process[key]["ratio"] for key in YARDSTICK}
    orm = pipeline["orm"]
    ratios["pipeline_throughput"] = round(orm["burst"]["tasks_per_second"] / orm["loop"]["tasks_per_second"], 3)
    ratios["scaling_efficiency_8"] = scaling["8"]["efficiency"]
    ratios["time_to_visible_ms"] = live["added_p50_ms"]
    ratios["fair_wait_s"] = scheduling["fairness"]["wait_seconds"]
    ratios["scale_out_efficiency"] = scale.get("scale_out_efficiency") if scale else None
    return {key: ratios[key] for key in RATIO_KEYS}


def spread(ratios: list[float]) -> float:
    """How far a ratio's rounds disagree: (max - min) / median."""
    return round((max(ratios) - min(ratios)) / statistics.median(ratios), 3) if len(ratios) > 1 else 0.0


def noisy_figures(web: dict[str, dict], in_process: dict[str, dict]) -> list[str]:
    """The ratios whose rounds disagree by more than SPREAD_LIMIT, in-process and under wrk."""
    noisy = [f"in-process {key}" for key, row in in_process.items() if row["spread"] > SPREAD_LIMIT]
    return noisy + [f"wrk {key}" for key, row in web.items() if row.get("spread_signed_in", 0.0) > SPREAD_LIMIT]


def queue_overhead_ms(broker: dict) -> float:
    """Of tasks sent one at a time, the p50 of each one's submit -> completed minus its own work."""
    return broker["sequential"]["overhead_p50_ms"]


def overhead_against_loop_ms(broker: dict, loop: dict) -> float:
    """The p50 submit -> completed minus the plain loop's p50 work: the overhead plus any
    difference in how fast the worker and the loop (another process) did the same work."""
    return round(broker["sequential"]["p50_ms"] - loop["p50_ms"], 1)


def fifo_wait_seconds(tasks_ahead: int, workers: int, task_seconds: float) -> float:
    """What first come, first served made the newcomer wait: every task queued before its own,
    `workers` at a time."""
    return tasks_ahead / workers * task_seconds


def scheduling_figures(scheduling: dict) -> dict[str, float]:
    """The newcomer's wait behind four people's queues, and nine vendor jobs on two workers."""
    fairness, jobs = scheduling["fairness"], scheduling["async"]
    task_seconds, job_seconds = fairness["task_seconds"], jobs["job_seconds"]
    return {
        "fairness_wait_seconds": fairness["wait_seconds"],
        "fairness_wait_over_task_seconds": round(fairness["wait_seconds"] / task_seconds, 3),
        "fifo_wait_seconds_estimate": round(
            fifo_wait_seconds(fairness["tasks_ahead"], fairness["workers"], task_seconds), 2
        ),
        # context: a sixth person, queued once every one of the crowd had been served
        "fairness_latecomer_wait_over_task_seconds": round(fairness["latecomer"]["wait_seconds"] / task_seconds, 3),
        "async_jobs_in_flight_max": jobs["vendor"]["in_flight_max"],
        "async_makespan_over_job_seconds": round(jobs["seconds"] / job_seconds, 3),
        "async_submissions_per_job": round(jobs["vendor"]["submissions"] / jobs["tasks"], 3) if jobs["tasks"] else 0.0,
    }


def live_figures(live: dict) -> dict[str, float]:
    """Time to visible beside the task's own duration (created -> finished), and what the page added."""
    return {
        "time_to_visible_p50_ms": live["visible_p50_ms"],
        "time_to_visible_p95_ms": live["visible_p95_ms"],
        "time_to_visible_task_p50_ms": live["task_p50_ms"],
        "time_to_visible_task_p95_ms": live["task_p95_ms"],
        "time_to_visible_added_p50_ms": live["added_p50_ms"],
        "time_to_visible_added_p95_ms": live["added_p95_ms"],
    }


def figures(
    pipeline: dict, memory: dict, scheduling: dict, live: dict, serving: dict | None = None
) -> dict[str, float]:
    """The measured figures; the serving ones when the serving phase ran (absent, their
    targets are missed, never passed)."""
    loop = pipeline["orm"]["loop"]
    return {
        **(serving_model.serving_figures(serving) if serving else {}),
        "queue_overhead_orm_ms": queue_overhead_ms(pipeline["orm"]),
        "queue_overhead_redis_ms": queue_overhead_ms(pipeline["redis"]),
        "latency_over_loop_orm_ms": overhead_against_loop_ms(pipeline["orm"], loop),
        "latency_over_loop_redis_ms": overhead_against_loop_ms(pipeline["redis"], loop),
        "worker_peak_rss_mb": round(memory["worker_peak_rss_kb"] / 1024, 1),
        "download_rss_increase_over_file_size": memory["download"]["increase_over_file_size"],
        **scheduling_figures(scheduling),
        **live_figures(live),
    }


def check_targets(ratios: dict[str, float | None], measured: dict[str, float]) -> dict[str, dict]:
    results = {}
    for name, (kind, op, bound) in TARGETS.items():
        value = ratios[name] if kind == "ratio" else measured.get(name)
        if value is None:  # not measured (no scale-out run yet): a miss, never a pass
            results[name] = {"value": None, "target": f"{op} {bound:g}", "pass": False}
            continue
        passed = {">=": value >= bound, "<=": value <= bound, "<": value < bound, "==": value == bound}[op]
        results[name] = {"value": value, "target": f"{op} {bound:g}", "pass": passed}
    return results


def missing_ratio_keys(results: dict) -> list[str]:
    ratios = results.get("ratios", {})
    return [
        key
        for key in RATIO_KEYS
        if not isinstance(ratios.get(key), (int, float))
        and not (key in MEASURED_ELSEWHERE and key in ratios and ratios[key] is None)
    ] + sorted(set(ratios) - set(RATIO_KEYS))


def table(results: dict) -> str:
    web, in_process, targets, lines = results["web"], results["web_inprocess"], results["targets"], []
    lines.append(
        "in-process (the targets): each endpoint against the signed-in copy of its yardstick, "
        "A/B interleaved; spread = (max - min) / median of the rounds"
    )
    lines.append(f"{'endpoint':<24} {'ms':>8} {'yardstick ms':>13} {'ratio':>6} {'spread':>7}  {'wrk':>5}  target")
    for key, row in in_process.items():
        wrk = web.get(key, {}).get("ratio_signed_in")
        lines.append(
            f"{key:<24} {row['ms']:>8.3f} {row['yardstick_ms']:>13.3f} {row['ratio']:>6.2f} {row['spread']:>7.0%}  "
            f"{'' if wrk is None else f'{wrk:.2f}':>5}  {_verdict(targets[key])}"
        )
    lines.append("")
    lines.append(
        f"wrk through gunicorn: {'endpoint':<28} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}  {'signed-in':>9} "
        f"{'spread':>7}  {'anonymous':>9}"
    )
    for key, row in web.items():
        signed_in = f"{row['ratio_signed_in']:.2f}" if "ratio_signed_in" in row else ""
        row_spread = f"{row['spread_signed_in']:.0%}" if "spread_signed_in" in row else ""
        ratio = f"{row['ratio']:.2f}" if "ratio" in row else ""
        lines.append(
            f"{'':<22}{key:<28} {row['requests_per_second']:>9.1f} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f}  "
            f"{signed_in:>9} {row_spread:>7}  {ratio:>9}"
        )
    for figure in results.get("noisy", []):
        lines.append(f"NOISY: {figure}'s rounds disagree by more than {SPREAD_LIMIT:.0%}")
    lines.append("")
    lines.append(f"{'pipeline':<28} {'tasks/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'work p50':>9} {'overhead p50':>13}")
    for broker, runs in results["pipeline"].items():
        for mode in ("loop", "burst", "sequential"):
            if mode in runs:
                run = runs[mode]
                queue = f"{run['work_p50_ms']:>9.1f} {run['overhead_p50_ms']:>13.1f}" if "work_p50_ms" in run else ""
                lines.append(
                    f"{broker + ' ' + mode:<28} {run['tasks_per_second']:>8.2f} {run['p50_ms']:>8.1f} {run['p95_ms']:>8.1f} {queue}"
                )
    lines.append("")
    for name in ("pipeline_throughput", "queue_overhead_orm_ms", "queue_overhead_redis_ms"):
        lines.append(f"{name:<38} {targets[name]['value']:>8}  {_verdict(targets[name])}")
    figures = results["figures"]
    for name in ("latency_over_loop_orm_ms", "latency_over_loop_redis_ms"):
        lines.append(f"{name:<38} {figures[name]:>8}  (p50 latency minus the loop's p50 work, for comparison)")
    lines.append("")
    lines.append(f"{'scaling (2 s provider)':<28} {'tasks':>6} {'tasks/s':>8} {'ideal':>7} {'efficiency':>10}")
    for workers, run in results["scaling"].items():
        lines.append(
            f"{workers + ' workers':<28} {run['tasks']:>6} {run['tasks_per_second']:>8.2f} "
            f"{int(workers) / PROVIDER_SECONDS:>7.2f} {run['efficiency']:>10.3f}"
        )
    lines.append(
        f"{'scaling_efficiency_8':<38} {targets['scaling_efficiency_8']['value']:>8}  {_verdict(targets['scaling_efficiency_8'])}"
    )
    lines.append("")
    download = results["memory"]["download"]
    lines.append(
        f"{'worker_peak_rss_mb':<38} {targets['worker_peak_rss_mb']['value']:>8}  {_verdict(targets['worker_peak_rss_mb'])}"
    )
    lines.append(
        f"{'download_rss_increase_over_file_size':<38} {download['increase_over_file_size']:>8}  "
        f"{_verdict(targets['download_rss_increase_over_file_size'])}  "
        f"({download['increase_kb'] / 1024:.1f} MiB for a {download['file_bytes'] / 2**20:.1f} MiB image)"
    )
    lines.append("")
    lines += scheduling_table(results["scheduling"], results["figures"], targets)
    lines.append("")
    lines += live_table(results["live"], results["figures"], targets)
    lines.append("")
    if results.get("serving"):
        lines += serving_model.table(results["serving"], targets)
        lines.append("")
    lines.append(f"{'fair_wait_s':<38} {targets['fair_wait_s']['value']:>8}  {_verdict(targets['fair_wait_s'])}")
    scale = results.get("scale") or {}
    lines.append(
        f"{'scale_out_efficiency':<38} {targets['scale_out_efficiency']['value']!s:>8}  "
        f"{_verdict(targets['scale_out_efficiency'])}  "
        + (
            f"(make bench-scale of {scale['started_at']})"
            if scale.get("started_at")
            else "(no make bench-scale run yet)"
        )
    )
    return "\n".join(lines)


def live_table(live: dict, figures: dict, targets: dict) -> list[str]:
    lines = [
        f"time to visible: {live['tasks']} tasks of {live['provider_seconds']:g} s (offline provider), one at a "
        "time; Generate -> first picture through the event stream, beside the task's own created -> finished",
        f"{'':<38} {'p50 ms':>8} {'p95 ms':>8}",
    ]
    for label, key in (
        ("visible", "time_to_visible"),
        ("task's own", "time_to_visible_task"),
        ("added", "time_to_visible_added"),
    ):
        lines.append(f"{label:<38} {figures[key + '_p50_ms']:>8} {figures[key + '_p95_ms']:>8}")
    lines.append(
        f"{'time_to_visible_ms (added p50)':<38} {figures['time_to_visible_added_p50_ms']:>8}  {_verdict(targets['time_to_visible_ms'])}"
    )
    return lines


def scheduling_table(scheduling: dict, figures: dict, targets: dict) -> list[str]:
    fairness, jobs = scheduling["fairness"], scheduling["async"]
    vendor, newcomer = jobs["vendor"], fairness["newcomer"]
    task_seconds, job_seconds = fairness["task_seconds"], jobs["job_seconds"]
    width = max(38, *(len(name) for name in SCHEDULING_FIGURES))

    def row(name: str, note: str = "") -> str:
        verdict = f"  {_verdict(targets[name])}" if name in targets else ""
        return f"{name:<{width}} {figures[name]:>8}{verdict}{'  ' + note if note else ''}"

    return [
        f"scheduling (phase {scheduling['seconds']:g} s): {fairness['people']} people x {fairness['tasks_each']} "
        f"tasks of {task_seconds:g} s on {fairness['workers']} workers, then a newcomer with 1; "
        f"{jobs['tasks']} vendor jobs of {job_seconds:g} s on {jobs['workers']} workers",
        row(
            "fairness_wait_seconds",
            f"(started {fairness['start_position']} of {fairness['tasks']}, after "
            f"{', '.join(newcomer['started_ahead']) or 'nobody'}; {newcomer['crowd_unserved_when_queued']} of the "
            f"crowd not yet served when it queued)",
        ),
        row("fairness_wait_over_task_seconds"),
        row(
            "fairness_latecomer_wait_over_task_seconds",
            f"(one more person, queued once all {fairness['people']} of the crowd had been served)",
        ),
        row(
            "fifo_wait_seconds_estimate",
            f"({fairness['tasks_ahead']} ahead / {fairness['workers']} workers x {task_seconds:g} s)",
        ),
        row("async_jobs_in_flight_max", f"(at the vendor; {jobs['workers']} workers)"),
        row("async_makespan_over_job_seconds", f"(all done in {jobs['seconds']:g} s)"),
        row("async_submissions_per_job", f"({vendor['submissions']} submissions, {vendor['looks']} looks)"),
    ]


def _verdict(target: dict) -> str:
    return f"{'pass' if target['pass'] else 'MISS'} ({target['target']})"
