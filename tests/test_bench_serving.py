"""The serving measurement (bench/serving.py): its figures and verdicts from sample runs, and one
small real run against the two gunicorn servers with event streams held open."""

from __future__ import annotations

import pytest

from bench import processes, report, servers, serving, workers
from bench.load import LoadSettings
from bench.workdir import WorkDir


def run(rps: float, p99: float = 10.0, valid: bool = True) -> dict:
    return {"requests_per_second": rps, "p50_ms": p99 / 2, "p99_ms": p99, "valid": valid}


def sample_serving(poll_without=(100.0, 120.0, 110.0), poll_with=(130.0, 125.0, 160.0), still_open=200) -> dict:
    rounds = {
        "gallery_first_page": ([90.0, 100.0, 80.0], [100.0, 100.0, 100.0]),
        "task_poll": ([600.0, 700.0, 650.0], [1000.0, 1000.0, 1000.0]),
        "api_task": ([1000.0, 980.0, 1010.0], [1000.0, 1000.0, 1000.0]),
        "thumbnail": ([500.0, 520.0, 510.0], [1000.0, 1000.0, 1000.0]),
    }
    endpoints = {
        key: serving.compare_servers([run(rps) for rps in asgi], [run(rps) for rps in gthread])
        for key, (asgi, gthread) in rounds.items()
    }
    without = [run(1000.0, p99) for p99 in poll_without]
    with_streams = [run(1000.0, p99) for p99 in poll_with]
    return {
        "processes": 1,
        "threads": 8,
        "rounds": 3,
        "endpoints": endpoints,
        "streams": {
            "count": 200,
            "people": 40,
            "per_person": 5,
            "without": without,
            "with": with_streams,
            "p99_without_ms": 110.0,
            "p99_with_ms": 130.0,
            "p99_increase": serving.p99_increase(without, with_streams),
            "still_open_min": still_open,
        },
    }


def test_each_round_compares_the_asgi_server_with_the_gthread_run_beside_it():
    row = sample_serving()["endpoints"]["gallery_first_page"]
    assert row["round_ratios"] == [0.9, 1.0, 0.8]
    assert row["ratio"] == 0.9  # the median round
    assert row["asgi"]["requests_per_second"] == 90.0
    assert row["gthread"]["requests_per_second"] == 100.0


def test_the_poll_p99_increase_is_the_median_with_streams_over_the_median_without():
    assert sample_serving()["streams"]["p99_increase"] == pytest.approx(0.182)  # 130 / 110 - 1
    assert serving.p99_increase([run(1.0, 100.0)], [run(1.0, 90.0)]) == -0.1  # faster with them: no penalty


def test_serving_figures_and_their_verdicts():
    figures = serving.serving_figures(sample_serving())
    assert set(figures) == set(serving.FIGURE_KEYS)
    verdicts = serving.verdicts(figures)
    assert verdicts["asgi_over_gthread_api_task"] == {"value": 1.0, "target": ">= 0.95", "pass": True}
    assert not verdicts["asgi_over_gthread_gallery_first_page"]["pass"]  # 0.9: slower than gthread
    assert not verdicts["asgi_over_gthread_thumbnail"]["pass"]
    assert verdicts["poll_p99_increase_with_streams"]["pass"]  # +18 %
    worse = serving.serving_figures(sample_serving(poll_with=(140.0, 140.0, 140.0)))
    assert not serving.verdicts(worse)["poll_p99_increase_with_streams"]["pass"]  # +27 %


def test_the_benchmark_report_checks_the_serving_targets_and_misses_them_when_not_measured():
    from tests.test_bench import SAMPLE_LIVE, sample_ratios, sample_results, sample_scheduling

    _, pipeline, _, memory = sample_results()
    measured = report.figures(pipeline, memory, sample_scheduling(), SAMPLE_LIVE, sample_serving())
    targets = report.check_targets(sample_ratios(), measured)
    assert targets["asgi_over_gthread_task_poll"] == {"value": 0.65, "target": ">= 0.95", "pass": False}
    assert targets["poll_p99_increase_with_streams"]["pass"]
    assert targets["queue_overhead_redis_ms"]["pass"]  # the other targets are still there
    unmeasured = report.check_targets(
        sample_ratios(), report.figures(pipeline, memory, sample_scheduling(), SAMPLE_LIVE)
    )
    assert unmeasured["asgi_over_gthread_api_task"] == {"value": None, "target": ">= 0.95", "pass": False}


def test_a_failed_load_or_a_stream_that_closed_makes_the_run_invalid():
    assert serving.problems_in(sample_serving()) == []
    assert serving.problems_in(sample_serving(still_open=199)) == [
        "serving streams: only 199 of 200 were still open after a run"
    ]
    broken = sample_serving()
    broken["endpoints"]["thumbnail"]["gthread"]["runs"][1]["valid"] = False
    assert serving.problems_in(broken) == [
        "serving thumbnail (gthread): a wrk run had responses other than 200 or socket errors"
    ]


def test_the_table_gives_each_endpoint_and_the_streams_verdict():
    sample = sample_serving()
    lines = serving.table(sample, serving.verdicts(serving.serving_figures(sample)))
    assert any(line.startswith("task_poll") and "0.650  MISS (>= 0.95)" in line for line in lines)
    assert "110.00 ms -> 130.00 ms, +18.2%  pass (<= 0.2)" in lines[-1]


# --- one small real run ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def seeded():
    workdir = WorkDir.create()
    try:
        argv = ["bench.seed", "--users", "2", "--images", "60", "--measured", "30"]
        seed = workers.client(workdir, argv, "seed")
        servers.collect_static(workdir)
        yield workdir, seed
    finally:
        processes.stop_all()
        workdir.remove()


@pytest.mark.subprocess
def test_a_small_real_run_measures_both_servers_and_holds_every_stream_open(seeded):
    workdir, seed = seeded
    settings = serving.Settings(
        load=LoadSettings(threads=1, connections=4, seconds=1), rounds=1, warmup_seconds=1, streams=12
    )
    result = serving.measure_serving(workdir, seed, settings, lambda message: None)
    assert serving.problems_in(result) == []
    assert set(result["endpoints"]) == set(serving.ENDPOINTS)
    streams = result["streams"]
    assert (streams["count"], streams["people"], streams["per_person"]) == (12, 3, 5)  # the app's cap: 5 each
    assert streams["still_open_min"] == 12
    assert set(serving.serving_figures(result)) == set(serving.FIGURE_KEYS)


@pytest.mark.subprocess
def test_streams_that_do_not_stream_stop_the_measurement(seeded):
    workdir, _ = seeded
    people = serving.stream_people(workdir, 5)
    app = servers.start_app(workdir, servers.free_port())
    try:
        # signed out: the stream answers with a redirect to the sign-in page, not events
        with pytest.raises(RuntimeError, match="closed before streaming"):
            serving.EventStreams(app.url, ["not-a-session"]).__enter__()
        # past the app's cap (5 a person), a person's next stream is refused (429)
        person = people["session_keys"][:1]
        with serving.EventStreams(app.url, person * 5) as five:
            assert five.still_open() == 5
            with pytest.raises(RuntimeError, match="closed before streaming"):
                serving.EventStreams(app.url, person).__enter__()
    finally:
        app.stop()
