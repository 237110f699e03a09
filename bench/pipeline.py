"""The task pipeline, seen from the submitting side (runs in the app's environment).

    python -m bench.pipeline cluster --tasks N --mode burst|sequential --out result.json
    python -m bench.pipeline loop --tasks N --out result.json
    python -m bench.pipeline stop-polled --task ID --out result.json

`cluster` submits through services.create_task (the path the create page and the API take)
to whatever worker cluster the orchestrator started, and waits on the Task rows:
  - burst: all N at once; tasks/s = N / (last finished - first submitted).
  - sequential: one at a time, each after the previous finished; the unloaded latency.
Latency is submit -> Task.finished_at (set by the worker as it completes the task). The work
itself is Task.claimed_at -> finished_at, timed where it ran; what the queue adds to a task
is its latency minus its work (submit -> the worker claims it: enqueue, delivery, pickup).
`loop` does the same work in this one process, with no queue: it creates each Task row and
calls generator.scheduler.inline.run_task (the worker's claim and step) inline, timing each.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import django

FINAL = ("completed", "failed", "canceled")
# How often the submitter looks for the end of a task. Latency comes from the worker's own
# finished_at, so this only paces the next submission; a tighter loop would take CPU from the
# workers on a 2-core machine and be measured as queue overhead.
POLL_SECONDS = 0.02


def task_settings(n: int):
    from generator.services import TaskSettings

    # The create form's defaults: one 1024x1024 offline sketch, random seed.
    return TaskSettings(
        prompt=f"a lighthouse at dawn, benchmark study {n}",
        provider="offline",
        model="sketch-v1",
        width=1024,
        height=1024,
    )


def submitter():
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username="bench1")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    # nearest rank, so every percentile is an observed value
    index = max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))
    return ordered[index]


def summary(latencies_s: list[float], seconds: float, failed: int, work_s: list[float] | None = None) -> dict:
    queue = {}
    if work_s:
        queue = {
            "work_p50_ms": round(percentile(work_s, 0.50) * 1000, 1),
            "overhead_p50_ms": round(
                percentile([total - work for total, work in zip(latencies_s, work_s, strict=False)], 0.50) * 1000, 1
            ),
        }
    return {
        **queue,
        "tasks": len(latencies_s),
        "failed": failed,
        "seconds": round(seconds, 3),
        "tasks_per_second": round(len(latencies_s) / seconds, 3) if seconds else 0.0,
        "p50_ms": round(percentile(latencies_s, 0.50) * 1000, 1),
        "p95_ms": round(percentile(latencies_s, 0.95) * 1000, 1),
        "mean_ms": round(statistics.fmean(latencies_s) * 1000, 1) if latencies_s else 0.0,
    }


def run_cluster(count: int, mode: str, timeout: float) -> dict:
    from generator.models import Task
    from generator.services import create_task

    owner = submitter()
    submitted: dict[str, float] = {}
    deadline = time.monotonic() + timeout

    def wait(ids: list[str]) -> None:
        while Task.objects.filter(pk__in=ids).exclude(status__in=FINAL).exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"tasks still unfinished after {timeout:g} s")
            time.sleep(POLL_SECONDS)

    first = time.time()
    for n in range(count):
        submitted_at = time.time()
        task = create_task(owner, task_settings(n))
        submitted[str(task.pk)] = submitted_at
        if mode == "sequential":
            wait([str(task.pk)])
    wait(list(submitted))
    rows = Task.objects.filter(pk__in=list(submitted)).values_list("pk", "status", "claimed_at", "finished_at")
    done = [(submitted[str(pk)], claimed, finished) for pk, status, claimed, finished in rows if status == "completed"]
    latencies = [finished.timestamp() - at for at, _claimed, finished in done]
    work = [(finished - claimed).total_seconds() for _at, claimed, finished in done]
    failed = sum(1 for _, status, _, _ in rows if status != "completed")
    last = max(finished.timestamp() for _, _, _, finished in rows)
    result = summary(latencies, last - first, failed, work)
    if mode == "burst":
        # When each task was claimed, from the first submission: a worker idle for a round
        # shows as a gap here (the throughput alone cannot say where the time went).
        result["claimed_s"] = sorted(round(claimed.timestamp() - first, 2) for _at, claimed, _finished in done)
    return result


def run_loop(count: int) -> dict:
    from generator.models import Task
    from generator.scheduler.inline import run_task

    owner = submitter()
    durations, failed = [], 0
    started = time.perf_counter()
    for n in range(count):
        task = Task.objects.create(owner=owner, **task_settings(n).__dict__)
        begun = time.perf_counter()
        done = run_task(str(task.pk))
        durations.append(time.perf_counter() - begun)
        failed += done is None or done.status != "completed"
    return summary(durations, time.perf_counter() - started, failed)


def stop_polled_task(task_id: str) -> dict:
    """End the seed's polled task (Stop, as its owner would) once the pages are measured. It sits
    in `processing` held by no worker, so past TASK_TIMEOUT + RECOVERY_GRACE_SECONDS (some 13
    minutes into a full run) the recovery schedule rightly takes it back and a worker of
    whatever phase is running then generates it: a 65th task in the 8-worker scaling run."""
    from generator.models import Task

    return {"stopped": Task.objects.get(pk=task_id).cancel()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=("cluster", "loop", "stop-polled"))
    parser.add_argument("--task", help="stop-polled: the seed's polled task")
    parser.add_argument("--tasks", type=int, default=0)
    parser.add_argument("--mode", choices=("burst", "sequential"), default="burst")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    django.setup()
    if args.what == "stop-polled":
        result = stop_polled_task(args.task)
    elif args.what == "cluster":
        result = run_cluster(args.tasks, args.mode, args.timeout)
    else:
        result = run_loop(args.tasks)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
