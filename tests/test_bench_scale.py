"""The scale-out run (`make bench-scale`, bench/scale.py): its audit, its figures, its file.

The pure parts run everywhere. One small real run (20 tasks of 0.5 s, 2 people, a cluster
SIGKILLed with a 3 s heartbeat timeout) needs PostgreSQL and Redis, so it runs under
`make test-scale` (DATABASE_URL and REDIS_URL set) and is skipped on the default SQLite run.
"""

from __future__ import annotations

import json
import os
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connection

from bench import processes, run, scale
from bench.scale import (
    ScaleSettings,
    ScaleWorkDir,
    TaskRow,
    audit,
    efficiency,
    phase_throughput,
    problems_in,
    summary,
    throughput,
    window_throughput,
)


def row(n: int, status: str = "completed", **changes) -> TaskRow:
    values = {
        "id": f"t{n}",
        "status": status,
        "attempts": 1,
        "num_images": 1,
        "images": 1 if status == "completed" else 0,
        "distinct_indexes": 1 if status == "completed" else 0,
        "started_at": 1000.0 + n,
        "finished_at": 1002.0 + n if status == "completed" else None,
    }
    return TaskRow(**{**values, **changes})


def test_efficiency_is_throughput_over_every_worker_busy_with_the_provider():
    assert efficiency(3.6, 8, 2.0) == pytest.approx(0.9)
    assert efficiency(4.0, 8, 2.0) == pytest.approx(1.0)
    assert efficiency(1.0, 4, 1.0) == pytest.approx(0.25)


def test_throughput_runs_from_the_first_start_to_the_last_finish_of_completed_tasks():
    rows = [row(0), row(1), row(2), row(3, started_at=1003.0, finished_at=1005.0), row(9, "failed")]
    figures = throughput(rows)
    assert figures == {"first_started_at": 1000.0, "completed": 4, "seconds": 5.0, "tasks_per_second": 0.8}


def test_throughput_is_also_given_while_and_after_the_pages_were_measured():
    finished = [1.0, 2.0, 10.5, 11.0, 12.0, 13.0, 14.0, 20.0, 21.0, 22.0, 29.0]
    phases = phase_throughput(finished, 0.0, (10.0, 15.0))
    assert phases == {
        "before_measuring": 0.2,  # 2 in 10 s
        "while_measuring": 1.0,  # 5 in 5 s
        "after_measuring": round(4 / 14.001, 3),  # up to and with the last finish
        "measuring_seconds": 5.0,
    }
    assert window_throughput(finished, 5.0, 5.0) == 0.0


def test_throughput_of_nothing_completed_is_zero_not_an_error():
    assert throughput([row(0, "failed")])["tasks_per_second"] == 0.0


def test_every_task_that_did_not_complete_is_lost_even_without_a_row():
    rows = [row(0), row(1, "failed"), row(2, "pending"), row(3, "processing")]
    found = audit(["t0", "t1", "t2", "t3", "t4"], rows)
    assert found["lost"] == 4
    assert found["lost_ids"] == ["t1", "t2", "t3", "t4"]
    assert found["statuses"] == {"completed": 1, "failed": 1, "pending": 1, "processing": 1}
    assert found["tasks"] == 5


def test_two_image_sets_or_one_index_drawn_twice_is_a_task_run_twice():
    rows = [
        row(0),
        row(1, images=2, distinct_indexes=1),  # the one picture of a one-picture task, twice
        row(2, num_images=2, images=2, distinct_indexes=1),  # index 0 twice, index 1 never
        row(3, num_images=2, images=2, distinct_indexes=2),
    ]
    found = audit([r.id for r in rows], rows)
    assert found["ran_twice"] == 2
    assert found["ran_twice_ids"] == ["t1", "t2"]
    assert found["lost"] == 0


def test_a_task_sent_again_after_its_worker_died_is_counted_apart_not_as_run_twice():
    rows = [row(0), row(1, attempts=2)]
    found = audit(["t0", "t1"], rows)
    assert found["re_sent"] == 1
    assert found["ran_twice"] == 0


def finished_run(**changes) -> dict:
    run_figures = {
        **audit(["t0", "t1"], [row(0), row(1)]),
        **throughput([row(0), row(1)]),
    }
    kill = {
        **audit(["t2"], [row(2, attempts=2)]),
        "kill": {"killed": True, "held_at_kill": 1, "reclaimed_within_seconds": 29.5},
    }
    under_load = {"inprocess": {"gallery_first_page": {"ratio": 0.3}, "task_poll": {"ratio": 0.4}}}
    results = summary(ScaleSettings(tasks=2, people=2), "2026-12-06T20:00:00+00:00", run_figures, kill, under_load)
    return json.loads(json.dumps({**results, **changes}))  # as read back from the file


def test_the_results_carry_the_figures_the_main_bench_reads_at_the_top(tmp_path, monkeypatch):
    results = finished_run()
    assert results["tasks"] == 2
    assert results["scale_out_efficiency"] == round(efficiency(results["tasks_per_second"], 8, 2.0), 3)
    assert results["gallery_ratio_under_load"] == 0.3
    assert results["poll_ratio_under_load"] == 0.4
    assert results["kill_reclaimed_within_seconds"] == 29.5
    path = tmp_path / "results-scale.json"
    path.write_text(json.dumps(results))
    monkeypatch.setattr(run, "SCALE_RESULTS", path)
    top = run.latest_scale_run()
    assert top is not None
    assert {"started_at", "tasks", "lost", "ran_twice", "tasks_per_second", "scale_out_efficiency"} <= set(top)
    assert "run" not in top and "kill_run" not in top  # the details stay in the file
    assert top["scale_out_efficiency"] == results["scale_out_efficiency"]  # what bench/report.py's target reads


def test_a_lost_task_a_twice_run_task_or_a_kill_that_missed_makes_the_run_fail():
    assert problems_in(finished_run()) == []
    lost = finished_run()
    lost["run"]["lost"] = 3
    twice = finished_run()
    twice["kill_run"]["ran_twice"] = 1
    missed = finished_run()
    missed["kill_run"]["kill"]["held_at_kill"] = 0
    assert problems_in(lost) == ["run: 3 tasks lost"]
    assert problems_in(twice) == ["kill run: 1 tasks ran twice"]
    assert problems_in(missed) == ["kill run: the cluster was not killed while holding a task"]


def test_the_committed_results_are_a_full_run_with_nothing_lost_or_run_twice():
    results = json.loads(scale.RESULTS.read_text())
    assert results["tasks"] == ScaleSettings().tasks
    assert results["people"] == ScaleSettings().people
    assert results["workers"] == 8
    assert results["lost"] == results["ran_twice"] == 0
    assert results["kill_lost"] == results["kill_ran_twice"] == 0
    assert results["kill_run"]["kill"]["held_at_kill"] > 0
    assert problems_in(results) == []


ON_POSTGRES_AND_REDIS = connection.vendor == "postgresql" and bool(settings.REDIS_URL)
# Its own Redis database: the run flushes it (make test-scale's own runs use db 9, make bench 12).
REAL_RUN_REDIS_DB = 11


def server_url() -> str:
    database = settings.DATABASES["default"]
    credentials = quote(database.get("USER") or "postgres")
    if database.get("PASSWORD"):
        credentials += ":" + quote(database["PASSWORD"])
    return f"postgres://{credentials}@{database.get('HOST') or '127.0.0.1'}:{database.get('PORT') or 5432}"


def redis_url() -> str:
    parts = urlsplit(settings.REDIS_URL)
    return urlunsplit((parts.scheme, parts.netloc, f"/{REAL_RUN_REDIS_DB}", "", ""))


@pytest.mark.cluster
@pytest.mark.subprocess
@pytest.mark.skipif(not ON_POSTGRES_AND_REDIS, reason="the scale-out run needs PostgreSQL and Redis (make test-scale)")
@pytest.mark.timeout(240)
def test_a_small_real_run_ends_every_task_once_even_when_a_cluster_is_killed(tmp_path):
    quick = ScaleSettings(
        tasks=20,
        people=2,
        provider_seconds=0.5,
        workers_per_cluster=2,
        kill_tasks=40,
        kill_after_seconds=0.3,
        heartbeat_seconds=0.5,
        heartbeat_timeout_seconds=3.0,
        measured_images=10,
        images=20,
        inprocess_rounds=1,
        inprocess_alternations=1,
        inprocess_batch=2,
        wrk_seconds=1,
        wait_before_measuring=0.5,
        server_url=server_url(),
        database=f"bench_scale_test_{os.getpid()}",
        redis_url=redis_url(),
    )
    try:
        results = scale.run_scale(quick, ScaleWorkDir(tmp_path))
    finally:
        processes.stop_all()
        scale.reset_database(quick, create=False)

    assert results["run"]["statuses"] == {"completed": 20}
    assert results["lost"] == results["ran_twice"] == results["run"]["re_sent"] == 0
    assert results["run"]["distinct_task_ids"] == 20
    kill = results["kill_run"]["kill"]
    assert kill["killed"] and kill["held_at_kill"] >= 1
    assert kill["reclaimed"] == kill["held_at_kill"]
    assert results["kill_run"]["statuses"] == {"completed": 40}
    assert results["kill_lost"] == results["kill_ran_twice"] == 0
    assert kill["re_runs_of_others"] == 0  # only what the dead cluster held was sent again
    assert kill["re_runs_of_held"] <= kill["held_at_kill"]
    assert results["under_load"]["wrk_gallery_first_page"]["valid"]
    assert results["gallery_ratio_under_load"] > 0 and results["poll_ratio_under_load"] > 0
    assert problems_in(results) == []
