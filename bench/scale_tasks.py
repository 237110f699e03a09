"""The scale-out run's app side (runs in the app's environment: PostgreSQL and Redis).

    python -m bench.scale_tasks tokens --people N --out tokens.json
    python -m bench.scale_tasks submit --url URL --url URL --tokens tokens.json --tasks N --out result.json
        [--kill-pgid PGID --kill-after SECONDS]

`tokens` gives each seeded person (bench0 ... benchN-1) an API token. `submit` sends the tasks
as people do, POST /api/v1/generate, round-robin over the people and the web processes from a
few threads; then waits until every task has ended and audits the rows (bench.scale.audit).
With --kill-pgid it SIGKILLs that process group (a worker cluster, as a lost machine goes)
`--kill-after` seconds after the first submission, once the cluster holds a task, and records
which tasks it held, when they were taken back and when everything ended.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import django

from .processes import group_members
from .scale import FINAL, TaskRow, audit, throughput

PROXY = {"X-Forwarded-Proto": "https"}
SUBMIT_THREADS = 6
SEND_ATTEMPTS = 5
POLL_SECONDS = 0.25
# The cluster to kill may be between tasks at --kill-after: wait this much longer for it to hold one.
KILL_WAIT_SECONDS = 10.0


def make_tokens(people: int) -> list[str]:
    from django.contrib.auth import get_user_model

    from accounts.tokens import create_token

    users = get_user_model().objects.filter(username__in=[f"bench{n}" for n in range(people)]).order_by("pk")
    tokens = [create_token(user, "scale").plaintext for user in users]
    if len(tokens) != people:
        raise RuntimeError(f"{people} people asked for, {len(tokens)} seeded")
    return tokens


def submit_all(urls: list[str], tokens: list[str], count: int) -> tuple[list[str], dict]:
    """Every task through the API, task n by person n % people on web process n % urls."""
    ids: list[str | None] = [None] * count
    errors: list[str] = []
    resent: list[int] = []
    next_task = iter(range(count))
    lock = threading.Lock()
    run_key = uuid.uuid4().hex[:12]

    def sender() -> None:
        connections: dict[str, http.client.HTTPConnection] = {}
        try:
            while True:
                with lock:
                    n = next(next_task, None)
                if n is None or errors:
                    return
                url = urls[n % len(urls)]
                for attempt in range(SEND_ATTEMPTS):
                    if url not in connections:
                        address = urlsplit(url)
                        connections[url] = http.client.HTTPConnection(
                            address.hostname or "127.0.0.1", address.port, timeout=60
                        )
                    try:
                        ids[n] = _generate(connections[url], tokens[n % len(tokens)], n, f"scale-{run_key}-{n}")
                        break
                    except (OSError, http.client.HTTPException):
                        # The server closed a kept-alive connection (its keep-alive timeout):
                        # a new one, and the same Idempotency-Key, so a resent task is not made twice.
                        connections.pop(url).close()
                        if attempt + 1 == SEND_ATTEMPTS:
                            raise
                        resent.append(n)
        except Exception as error:  # the run is invalid: stop the others, report it
            errors.append(repr(error))
        finally:
            for connection in connections.values():
                connection.close()

    started = time.time()
    threads = [threading.Thread(target=sender) for _ in range(min(SUBMIT_THREADS, count))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.time() - started
    if errors:
        raise RuntimeError(f"submitting failed: {errors[0]}")
    submitted = [task_id for task_id in ids if task_id]
    return submitted, {
        "submit_started_at": started,
        "submit_seconds": round(seconds, 3),
        "submits_per_second": round(len(submitted) / seconds, 1),
        "submits_resent": len(resent),
        "distinct_task_ids": len(set(submitted)),
    }


def _generate(connection: http.client.HTTPConnection, token: str, n: int, key: str) -> str:
    body = json.dumps({"prompt": f"a lighthouse at dawn, scale-out study {n}", "provider": "offline"})
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Idempotency-Key": key,
        **PROXY,
    }
    connection.request("POST", "/api/v1/generate", body=body, headers=headers)
    response = connection.getresponse()
    answer = json.loads(response.read())
    if response.status != 201:
        raise RuntimeError(f"generate answered {response.status}: {answer}")
    return answer["task_id"]


def rows_of(ids: list[str]) -> list[TaskRow]:
    from django.db.models import Count

    from generator.models import Task

    rows = []
    for start in range(0, len(ids), 500):
        found = (
            Task.objects.filter(pk__in=ids[start : start + 500])
            .annotate(image_count=Count("images"), image_indexes=Count("images__index", distinct=True))
            .values_list(
                "pk", "status", "attempts", "num_images", "image_count", "image_indexes", "started_at", "finished_at"
            )
        )
        for pk, status, attempts, wanted, images, indexes, started, finished in found:
            rows.append(
                TaskRow(
                    id=str(pk),
                    status=status,
                    attempts=attempts,
                    num_images=wanted,
                    images=images,
                    distinct_indexes=indexes,
                    started_at=started.timestamp() if started else None,
                    finished_at=finished.timestamp() if finished else None,
                )
            )
    return rows


def unfinished(ids: list[str]) -> int:
    from generator.models import Task

    return Task.objects.filter(pk__in=ids).exclude(status__in=FINAL).count()


class Killer:
    """SIGKILLs a cluster's process group once it holds a task, past `after` seconds; then watches
    the tasks it held until each is taken back by the surviving cluster."""

    def __init__(self, pgid: int, after: float, started: float) -> None:
        self.pgid, self.after, self.started = pgid, after, started
        self.killed_at: float | None = None
        self.held: list[str] = []
        self.reclaimed_at: dict[str, float] = {}
        self._dead_holders: tuple[str, ...] = ()

    def poll(self, now: float) -> None:
        if self.killed_at is None:
            if now - self.started >= self.after:
                self._maybe_kill(now)
        elif len(self.reclaimed_at) < len(self.held):
            self._watch(now)

    def _maybe_kill(self, now: float) -> None:
        from generator.models import Task

        holders = {pid: f":{pid}" for pid in group_members(self.pgid)}
        held = [
            str(pk)
            for pk, holder in Task.objects.filter(status=Task.Status.PROCESSING)
            .exclude(held_by="")
            .values_list("pk", "held_by")
            if any(holder.endswith(suffix) for suffix in holders.values())
        ]
        if not held and now - self.started < self.after + KILL_WAIT_SECONDS:
            return
        os.killpg(self.pgid, signal.SIGKILL)
        self.killed_at, self.held = time.time(), held
        self._dead_holders = tuple(holders.values())

    def _watch(self, now: float) -> None:
        from generator.models import Task

        waiting = [task_id for task_id in self.held if task_id not in self.reclaimed_at]
        for pk, status, holder in Task.objects.filter(pk__in=waiting).values_list("pk", "status", "held_by"):
            if status != Task.Status.PROCESSING or not holder.endswith(self._dead_holders):
                self.reclaimed_at[str(pk)] = now

    def report(self, rows: list[TaskRow]) -> dict:
        if self.killed_at is None:
            return {"killed": False}
        last_finish = max((row.finished_at for row in rows if row.finished_at), default=self.killed_at)
        held = set(self.held)
        return {
            "killed": True,
            "killed_after_seconds": round(self.killed_at - self.started, 1),
            "held_at_kill": len(self.held),
            "reclaimed": len(self.reclaimed_at),
            "reclaimed_within_seconds": round(max(self.reclaimed_at.values()) - self.killed_at, 1)
            if self.reclaimed_at
            else None,
            "all_ended_seconds_after_kill": round(last_finish - self.killed_at, 1),
            "re_runs_of_held": sum(1 for row in rows if row.id in held and row.attempts > 1),
            "re_runs_of_others": sum(1 for row in rows if row.id not in held and row.attempts > 1),
        }


def run(urls: list[str], tokens: list[str], count: int, timeout: float, kill: tuple[int, float] | None) -> dict:
    """Submit on a thread (so a kill can fall while tasks are still being sent), wait for every
    task to end (or the timeout: what did not end is lost), audit the rows."""
    outcome: dict = {}

    def submit() -> None:
        try:
            outcome["ids"], outcome["submitting"] = submit_all(urls, tokens, count)
        except Exception as error:
            outcome["error"] = error

    sender = threading.Thread(target=submit)
    started = time.time()
    sender.start()
    killer = Killer(kill[0], kill[1], started) if kill else None
    deadline = time.monotonic() + timeout
    while sender.is_alive() or unfinished(outcome.get("ids", [])):
        if "error" in outcome:
            raise RuntimeError(f"submitting failed: {outcome['error']!r}")
        if time.monotonic() > deadline:
            break
        if killer is not None:
            killer.poll(time.time())
        time.sleep(POLL_SECONDS)
    sender.join()
    if "error" in outcome:
        raise RuntimeError(f"submitting failed: {outcome['error']!r}")
    if killer is not None:
        killer.poll(time.time())  # held tasks that ended since the last look count as taken back
    ids = outcome["ids"]
    rows = rows_of(ids)
    result = {**audit(ids, rows), **throughput(rows), **outcome["submitting"]}
    # For the orchestrator's throughput while and after it measured the pages (not kept in the file).
    result["finished_at"] = sorted(round(row.finished_at, 3) for row in rows if row.finished_at)
    if killer is not None:
        result["kill"] = killer.report(rows)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=("tokens", "submit"))
    parser.add_argument("--people", type=int, default=50)
    parser.add_argument("--url", action="append", default=[])
    parser.add_argument("--tokens", type=Path)
    parser.add_argument("--tasks", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--kill-pgid", type=int)
    parser.add_argument("--kill-after", type=float, default=6.0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    django.setup()
    if args.what == "tokens":
        result: object = make_tokens(args.people)
    else:
        tokens = json.loads(args.tokens.read_text())
        kill = (args.kill_pgid, args.kill_after) if args.kill_pgid else None
        result = run(args.url, tokens, args.tasks, args.timeout, kill)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
