"""The benchmark harness's pure parts: wrk output, ratios, targets and the results' keys.

No servers here: `make bench-quick` runs the harness for real.
"""

from __future__ import annotations

import pytest

from bench import inprocess, report
from bench.load import parse_wrk, to_ms
from bench.pipeline import percentile, summary

WRK_OUTPUT = """\
Running 10s test @ http://127.0.0.1:40123/gallery/
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    21.30ms    5.02ms  98.10ms   88.00%
    Req/Sec   376.52     40.11   450.00     70.00%
  Latency Distribution
     50%   20.51ms
     75%   22.90ms
     90%   26.00ms
     99%    1.02s
  7531 requests in 10.01s, 180.33MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 3
Requests/sec:    752.37
Transfer/sec:     18.02MB
BENCH_NOT_200 3
"""


def test_it_reads_requests_percentiles_and_problems_from_wrk_output():
    result = parse_wrk(WRK_OUTPUT)
    assert result.requests_per_second == 752.37
    assert result.p50_ms == 20.51
    assert result.p99_ms == 1020.0
    assert result.requests == 7531
    assert result.not_200 == 3
    assert result.socket_errors == 3
    assert not result.valid


def test_a_clean_run_is_valid():
    clean = WRK_OUTPUT.replace("BENCH_NOT_200 3", "BENCH_NOT_200 0").replace(
        "  Socket errors: connect 0, read 2, write 0, timeout 1\n", ""
    )
    assert parse_wrk(clean).valid


def test_output_without_the_status_count_is_an_error():
    with pytest.raises(ValueError):
        parse_wrk(WRK_OUTPUT.replace("BENCH_NOT_200 3", ""))


@pytest.mark.parametrize(("text", "ms"), [("805.00us", 0.805), ("9.50ms", 9.5), ("1.20s", 1200.0), ("2.00m", 120000.0)])
def test_it_converts_wrk_durations_to_milliseconds(text, ms):
    assert to_ms(text) == pytest.approx(ms)


def test_percentiles_are_observed_values_by_nearest_rank():
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.95) == 95.0
    assert percentile([3.0], 0.99) == 3.0


def web_row(rps: float) -> dict:
    return {"requests_per_second": rps, "p50_ms": 1.0, "p99_ms": 2.0}


def sample_results() -> tuple[dict, dict, dict, dict]:
    runs = {
        "baseline_template": [web_row(100.0), web_row(120.0)],
        "baseline_json": [web_row(1000.0), web_row(1000.0)],
        "baseline_json_signed_in": [web_row(300.0), web_row(500.0)],
        "baseline_template_signed_in": [web_row(80.0), web_row(80.0)],
        "gallery_first_page": [web_row(66.0)],
        "gallery_deep_page": [web_row(55.0)],
        "gallery_filtered": [web_row(50.0)],
        "explore_first_page": [web_row(60.0)],
        "task_poll": [web_row(600.0)],
        "api_task": [web_row(700.0)],
        "thumbnail": [web_row(400.0)],
    }
    web = report.summarize_web(runs)
    run = {"tasks_per_second": 10.0, "p50_ms": 100.0, "p95_ms": 150.0}
    pipeline = {
        "orm": {
            "loop": {**run, "p50_ms": 80.0},
            "burst": {**run, "tasks_per_second": 8.0},
            "sequential": {**run, "p50_ms": 130.0, "overhead_p50_ms": 40.0},
        },
        "redis": {"burst": run, "sequential": {**run, "p50_ms": 95.0, "overhead_p50_ms": 9.0}},
    }
    scaling = {"8": {"tasks_per_second": 3.6, "efficiency": report.scaling_efficiency(3.6, 8)}}
    memory = {"worker_peak_rss_kb": 150 * 1024, "download": {"increase_over_file_size": 2.1}}
    return web, pipeline, scaling, memory


# In-process medians (app seconds, yardstick seconds) per round: each ratio is yardstick / app.
IN_PROCESS_ROUNDS = {
    "gallery_first_page": [(0.010, 0.007), (0.010, 0.0072), (0.0105, 0.007)],
    "gallery_deep_page": [(0.010, 0.006)] * 3,
    "gallery_filtered": [(0.010, 0.006)] * 3,
    "explore_first_page": [(0.010, 0.007)] * 3,
    "task_poll": [(0.001, 0.0009), (0.001, 0.0012), (0.001, 0.0008)],
    "api_task": [(0.001, 0.0009)] * 3,
    "thumbnail": [(0.002, 0.0009)] * 3,
}


def sample_in_process() -> dict[str, dict]:
    return {key: inprocess.summarize(inprocess.PAIRS[key], rounds) for key, rounds in IN_PROCESS_ROUNDS.items()}


def sample_ratios() -> dict:
    web, pipeline, scaling, _ = sample_results()
    return report.compute_ratios(
        sample_in_process(), pipeline, scaling, sample_scheduling(), SAMPLE_LIVE, {"scale_out_efficiency": 0.93}
    )


def sample_scheduling(newcomer_wait: float = 1.2, submissions: int = 9) -> dict:
    fairness = {
        "tasks_ahead": 16,
        "workers": 2,
        "task_seconds": 1.5,
        "wait_seconds": newcomer_wait,
        "latecomer": {"wait_seconds": 1.5},
    }
    jobs = {"tasks": 9, "seconds": 7.5, "job_seconds": 6.0, "vendor": {"in_flight_max": 9, "submissions": submissions}}
    return {"fairness": fairness, "async": jobs}


def test_each_round_compares_an_endpoint_with_the_baseline_runs_around_it():
    runs = {
        "baseline_template": [
            web_row(100.0),
            web_row(100.0),
            web_row(50.0),
            web_row(50.0),
            web_row(80.0),
            web_row(120.0),
        ],
        "gallery_first_page": [web_row(60.0), web_row(20.0), web_row(70.0)],
    }
    row = report.summarize_web(runs)["gallery_first_page"]
    assert row["round_ratios"] == [0.6, 0.4, 0.7]
    assert row["ratio"] == 0.6  # the median round
    assert row["requests_per_second"] == 60.0


def test_wrk_compares_each_endpoint_with_the_mean_of_its_baseline_runs():
    web, _, _, _ = sample_results()
    assert web["gallery_first_page"]["ratio"] == 0.6  # 66 / mean(100, 120)
    assert web["task_poll"]["ratio"] == 0.6


def test_the_issues_ratios_are_in_process_against_the_signed_in_yardsticks():
    ratios = sample_ratios()
    assert list(ratios) == list(report.RATIO_KEYS)
    assert ratios["gallery_first_page"] == 0.7  # the median round: 7 ms against 10 ms
    assert ratios["thumbnail"] == 0.45
    assert ratios["pipeline_throughput"] == 0.8
    assert ratios["scaling_efficiency_8"] == pytest.approx(0.9)
    assert ratios["time_to_visible_ms"] == 90.0  # what the page added to the task, p50
    assert ratios["fair_wait_s"] == 1.2
    assert ratios["scale_out_efficiency"] == 0.93


def test_in_process_rounds_report_their_median_ms_and_spread():
    poll = sample_in_process()["task_poll"]
    assert poll["yardstick"] == "baseline_json_signed_in"
    assert poll["round_ratios"] == [0.9, 1.2, 0.8]
    assert poll["ratio"] == 0.9
    assert poll["ms"] == 1.0
    assert poll["yardstick_ms"] == 0.9
    assert poll["spread"] == pytest.approx(0.444, abs=0.001)  # (1.2 - 0.8) / 0.9
    assert poll["noisy"]
    assert not sample_in_process()["gallery_first_page"]["noisy"]  # 0.667..0.72: 8 %


def test_a_noisy_run_says_which_figures_disagree():
    web, _, _, _ = sample_results()
    web["api_task"]["spread_signed_in"] = 0.2
    assert report.noisy_figures(web, sample_in_process()) == ["in-process task_poll", "wrk api_task"]


def test_without_a_scale_out_run_its_target_is_missed_not_passed():
    web, pipeline, scaling, memory = sample_results()
    ratios = report.compute_ratios(sample_in_process(), pipeline, scaling, sample_scheduling(), SAMPLE_LIVE, None)
    assert ratios["scale_out_efficiency"] is None
    targets = report.check_targets(ratios, report.figures(pipeline, memory, sample_scheduling(), SAMPLE_LIVE))
    assert targets["scale_out_efficiency"] == {"value": None, "target": ">= 0.9", "pass": False}
    # a missed target, not a broken run: bench-quick on a clone without results-scale.json stays valid
    assert report.missing_ratio_keys({"ratios": ratios}) == []
    assert report.missing_ratio_keys({"ratios": {**ratios, "fair_wait_s": None}}) == ["fair_wait_s"]


def test_signed_in_endpoints_are_also_compared_with_the_signed_in_baseline():
    web, pipeline, scaling, _ = sample_results()
    assert web["baseline_json_signed_in"]["ratio"] == 0.4  # mean(300, 500) / mean(1000, 1000)
    assert web["baseline_json_signed_in"]["yardstick"] == "baseline_json"
    assert web["task_poll"]["ratio"] == 0.6  # the issue's ratio is unchanged
    assert web["task_poll"]["ratio_signed_in"] == 1.5  # 600 / mean(300, 500)
    assert web["gallery_first_page"]["ratio_signed_in"] == 0.825  # 66 / 80
    # a context figure, never one of the issue's ratios
    assert "baseline_json_signed_in" not in sample_ratios()


def test_queue_overhead_is_each_tasks_latency_minus_its_own_work():
    # three tasks: 100 ms work in 110 ms, 80 ms in 120 ms, 90 ms in 95 ms
    row = summary([0.110, 0.120, 0.095], seconds=1.0, failed=0, work_s=[0.100, 0.080, 0.090])
    assert row["overhead_p50_ms"] == 10.0  # of 10, 40 and 5 ms
    assert row["work_p50_ms"] == 90.0
    assert row["p50_ms"] == 110.0


SAMPLE_LIVE = {
    "tasks": 50,
    "provider_seconds": 0.3,
    "visible_p50_ms": 520.0,
    "visible_p95_ms": 610.0,
    "task_p50_ms": 430.0,
    "task_p95_ms": 480.0,
    "added_p50_ms": 90.0,
    "added_p95_ms": 160.0,
}


def test_time_to_visible_is_reported_beside_the_tasks_own_duration():
    measured = report.live_figures(SAMPLE_LIVE)
    assert set(measured) == set(report.LIVE_FIGURES)
    assert measured["time_to_visible_p50_ms"] == 520.0
    assert measured["time_to_visible_task_p50_ms"] == 430.0
    assert measured["time_to_visible_added_p95_ms"] == 160.0


def test_targets_pass_and_miss_on_their_bounds():
    web, pipeline, scaling, memory = sample_results()
    ratios = sample_ratios()
    measured = report.figures(pipeline, memory, sample_scheduling(), SAMPLE_LIVE)
    assert measured["queue_overhead_orm_ms"] == 40.0
    assert measured["queue_overhead_redis_ms"] == 9.0
    assert measured["latency_over_loop_redis_ms"] == 15.0  # 95 - 80, reported beside it
    targets = report.check_targets(ratios, measured)
    assert set(targets) == set(report.TARGETS)
    assert targets["gallery_first_page"]["pass"]  # exactly on the bound
    assert not targets["thumbnail"]["pass"]  # 0.45 of its signed-in yardstick, below 0.9
    assert not targets["queue_overhead_orm_ms"]["pass"]  # 40 ms, above 30
    assert targets["queue_overhead_redis_ms"]["pass"]  # 9 ms, within 10
    assert targets["time_to_visible_ms"]["pass"]
    assert targets["scale_out_efficiency"]["pass"]
    assert not targets["download_rss_increase_over_file_size"]["pass"]
    assert targets["worker_peak_rss_mb"] == {"value": 150.0, "target": "< 300", "pass": True}


def test_results_must_carry_exactly_the_eight_ratio_keys():
    complete = {"ratios": {key: 1.0 for key in report.RATIO_KEYS}}
    assert report.missing_ratio_keys(complete) == []
    partial = {"ratios": {**complete["ratios"], "extra": 1.0}}
    del partial["ratios"]["thumbnail"]
    assert report.missing_ratio_keys(partial) == ["thumbnail", "extra"]


def test_scheduling_figures_compare_the_newcomers_wait_with_the_queue_it_skipped():
    measured = report.scheduling_figures(sample_scheduling(newcomer_wait=1.8))
    assert set(measured) == set(report.SCHEDULING_FIGURES)
    assert measured["fairness_wait_over_task_seconds"] == 1.2  # 1.8 s of 1.5 s tasks
    assert measured["fifo_wait_seconds_estimate"] == 12.0  # 16 ahead / 2 workers x 1.5 s
    assert measured["fairness_latecomer_wait_over_task_seconds"] == 1.0
    assert measured["async_makespan_over_job_seconds"] == 1.25  # 7.5 s for 6 s jobs
    assert measured["async_submissions_per_job"] == 1.0


def test_a_vendor_job_submitted_twice_misses_its_target():
    web, pipeline, scaling, memory = sample_results()
    ratios = sample_ratios()
    once = report.check_targets(ratios, report.figures(pipeline, memory, sample_scheduling(), SAMPLE_LIVE))
    assert once["async_submissions_per_job"] == {"value": 1.0, "target": "== 1", "pass": True}
    assert once["fairness_wait_over_task_seconds"]["pass"]
    twice = report.check_targets(
        ratios, report.figures(pipeline, memory, sample_scheduling(submissions=10), SAMPLE_LIVE)
    )
    assert not twice["async_submissions_per_job"]["pass"]  # 10 submissions for 9 jobs


def test_the_seeds_polled_task_is_stopped_before_the_worker_phases_so_recovery_cannot_run_it(db, user):
    from datetime import timedelta

    from django.utils import timezone

    from bench.pipeline import stop_polled_task
    from generator.models import Task
    from generator.scheduler import recovery
    from tests.factories import TaskFactory

    # As bench/seed.py makes it: generating, held by no worker.
    polled = TaskFactory(owner=user, status=Task.Status.PROCESSING, claimed_at=timezone.now(), held_by="")
    later = timezone.now() + timedelta(hours=1)  # a full run is past TASK_TIMEOUT by the scaling phase
    assert [task.pk for task in recovery._stale(later)] == [polled.pk]  # what a worker would have run

    assert stop_polled_task(str(polled.pk)) == {"stopped": True}
    polled.refresh_from_db()
    assert polled.status == Task.Status.CANCELED
    assert recovery._stale(later) == []
