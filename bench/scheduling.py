"""The scheduler, seen from the submitting side (runs in the app's environment).

    python -m bench.scheduling fairness --people 4 --each 4 --workers 2 --out result.json
    python -m bench.scheduling jobs --jobs 9 --out result.json

Both submit through services.create_task, as bench/pipeline.py does, to the cluster the
orchestrator started, and read the Task rows the workers wrote:
  - fairness: `people` new people queue `each` offline tasks apiece; once the workers have
    started the first ones, one more new person (the newcomer) queues a single task. Its wait
    is Task.started_at - created_at (both written by the app: the claim sets started_at).
    For context a sixth person (the latecomer) queues one once every one of the crowd has had
    a task started: the newcomer also waits, by design, for those of the crowd who had not
    been served yet when it arrived; the latecomer finds none.
  - jobs: `jobs` DashScope tasks at once (the orchestrator's fake vendor answers); how long
    until all are done, and how many attempts they took.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import django

from .pipeline import FINAL, POLL_SECONDS, submitter, task_settings

NEWCOMER = "newcomer"  # the fifth person, queued once the workers started the first tasks
LATECOMER = "latecomer"  # context: the sixth, queued once every one of the crowd was served


def person(username: str):
    from django.contrib.auth import get_user_model

    owner = get_user_model()(username=username)
    owner.set_unusable_password()
    owner.save()
    return owner


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} after {timeout:g} s")
        time.sleep(POLL_SECONDS)


def all_final(ids: list) -> bool:
    from generator.models import Task

    return not Task.objects.filter(pk__in=ids).exclude(status__in=FINAL).exists()


def run_fairness(people: int, each: int, workers: int, timeout: float) -> dict:
    from generator.models import Task
    from generator.services import create_task

    crowd = [person(f"fair{n}") for n in range(people)]
    ids = []
    for owner in crowd:
        for n in range(each):
            ids.append(create_task(owner, task_settings(n)).pk)

    def started_people() -> int:
        return Task.objects.filter(pk__in=ids, started_at__isnull=False).values("owner").distinct().count()

    # The newcomer queues once the workers have started the first tasks; the latecomer (context)
    # once every one of the crowd has had a task started.
    wait_until(lambda: started_people() >= min(workers, people), timeout, "the first tasks had not started")
    newcomer = arrival(NEWCOMER, len(ids), ids, people)
    wait_until(lambda: started_people() >= people, timeout, "the crowd's first tasks had not all started")
    latecomer = arrival(LATECOMER, len(ids) + 1, ids, people)
    everything = [*ids, newcomer["task"], latecomer["task"]]
    wait_until(lambda: all_final(everything), timeout, "tasks still unfinished")

    rows = list(
        Task.objects.filter(pk__in=everything)
        .order_by("started_at", "created_at")
        .values("pk", "owner__username", "status", "created_at", "started_at", "finished_at")
    )
    work = [(row["finished_at"] - row["started_at"]).total_seconds() for row in rows if row["finished_at"]]
    result = {"people": people, "tasks_each": each, "workers": workers, "tasks_ahead": len(ids)}
    for name, arrived in ((NEWCOMER, newcomer), (LATECOMER, latecomer)):
        result[name] = waited(rows, arrived)
    return {
        **result,
        "wait_seconds": result[NEWCOMER]["wait_seconds"],
        "start_position": result[NEWCOMER]["start_position"],
        "work_mean_seconds": round(sum(work) / len(work), 3) if work else 0.0,
        "tasks": len(rows),
        "failed": sum(1 for row in rows if row["status"] != "completed"),
        "start_order": [row["owner__username"] for row in rows],
    }


def arrival(username: str, n: int, crowd_ids: list, people: int) -> dict:
    """One new person queues one task; what the crowd looked like at that moment."""
    from generator.models import Task
    from generator.services import create_task

    crowd = Task.objects.filter(pk__in=crowd_ids)
    processing = crowd.filter(status=Task.Status.PROCESSING).count()
    served = crowd.filter(started_at__isnull=False).values("owner").distinct().count()
    task = create_task(person(username), task_settings(n))
    return {"task": task.pk, "processing_when_queued": processing, "crowd_unserved_when_queued": people - served}


def waited(rows: list[dict], arrived: dict) -> dict:
    """How long the task waited to start, and who started in the meantime."""
    mine = next(row for row in rows if row["pk"] == arrived["task"])
    others = [row for row in rows if row["pk"] != arrived["task"] and row["started_at"]]
    before = [row for row in others if row["started_at"] < mine["started_at"]]
    return {
        "wait_seconds": round((mine["started_at"] - mine["created_at"]).total_seconds(), 3),
        "queued_after_first_start_seconds": round(
            (mine["created_at"] - min(row["started_at"] for row in others)).total_seconds(), 3
        ),
        "processing_when_queued": arrived["processing_when_queued"],
        "crowd_unserved_when_queued": arrived["crowd_unserved_when_queued"],
        "start_position": len(before) + 1,
        # tasks that started after this one was queued and before it started, by owner
        "started_ahead": [row["owner__username"] for row in before if row["started_at"] > mine["created_at"]],
    }


def job_settings(n: int):
    from generator.services import TaskSettings

    return TaskSettings(
        prompt=f"a lighthouse at dawn, vendor job {n}",
        provider="dashscope",
        model="wan2.2-t2i-flash",
        width=1024,
        height=1024,
        num_images=1,
    )


def run_jobs(count: int, timeout: float) -> dict:
    from generator.models import Task
    from generator.services import create_task

    owner = submitter()
    first = time.time()
    ids = [create_task(owner, job_settings(n)).pk for n in range(count)]
    queued = time.time() - first
    wait_until(lambda: all_final(ids), timeout, "vendor jobs still unfinished")
    rows = list(
        Task.objects.filter(pk__in=ids).values(
            "status", "attempts", "error_code", "created_at", "started_at", "finished_at"
        )
    )
    done = [row for row in rows if row["finished_at"]]
    last = max((row["finished_at"].timestamp() for row in done), default=time.time())
    return {
        "tasks": len(rows),
        "failed": sum(1 for row in rows if row["status"] != "completed"),
        "errors": sorted({row["error_code"] for row in rows if row["error_code"]}),
        "attempts": sum(row["attempts"] for row in rows),
        "queued_seconds": round(queued, 3),
        "seconds": round(last - first, 3),
        "started_spread_seconds": round(
            (max(row["started_at"] for row in rows) - min(row["started_at"] for row in rows)).total_seconds(), 3
        )
        if all(row["started_at"] for row in rows)
        else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=("fairness", "jobs"))
    parser.add_argument("--people", type=int, default=4)
    parser.add_argument("--each", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=9)
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    django.setup()
    if args.what == "fairness":
        result = run_fairness(args.people, args.each, args.workers, args.timeout)
    else:
        result = run_jobs(args.jobs, args.timeout)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
