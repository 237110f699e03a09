"""How big a run is: the full benchmark and the quick smoke run for CI."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    users: int
    images: int  # in total, over all users
    measured_images: int  # of them, the measured user's
    # wrk: the same threads, connections and duration for every endpoint, app and baseline
    wrk_threads: int
    wrk_connections: int
    wrk_seconds: int
    warmup_seconds: int
    # the whole sequence of runs is repeated; each ratio is the median over the rounds
    web_rounds: int
    # in-process (bench/inprocess.py): rounds, A/B alternations per round, requests per batch
    inprocess_rounds: int
    inprocess_alternations: int
    inprocess_batch: int
    # the pipeline at the embedded defaults, on the ORM and the Redis broker
    pipeline_tasks: int
    # OFFLINE_DELAY_SECONDS=2 at each worker count, `scaling_rounds` tasks per worker
    scaling_workers: tuple[int, ...]
    scaling_rounds: int
    # the scheduling phase: OFFLINE_DELAY_SECONDS of the fairness run, and how long each fake
    # DashScope job runs at the vendor
    fairness_task_seconds: float
    vendor_job_seconds: float
    # time to visible: tasks submitted one at a time while the page's event stream is open
    live_tasks: int
    # the serving model (bench/serving.py): interleaved asgi/gthread rounds, each wrk run this
    # long, and the event streams held open during the poll's load
    serving_rounds: int
    serving_seconds: int
    serving_streams: int
    serving_stream_rounds: int
    results_file: str


FULL = Profile(
    name="full",
    users=5,
    images=100_000,
    measured_images=20_000,
    wrk_threads=2,
    wrk_connections=16,
    wrk_seconds=5,
    warmup_seconds=2,
    web_rounds=5,
    inprocess_rounds=5,
    inprocess_alternations=6,
    inprocess_batch=10,
    pipeline_tasks=200,
    scaling_workers=(1, 2, 4, 8),
    scaling_rounds=8,
    fairness_task_seconds=1.5,
    vendor_job_seconds=6.0,
    live_tasks=50,
    serving_rounds=3,
    serving_seconds=5,
    serving_streams=200,
    serving_stream_rounds=6,
    results_file="results.json",
)

QUICK = Profile(
    name="quick",
    users=5,
    images=5_000,
    measured_images=1_000,
    wrk_threads=2,
    wrk_connections=16,
    wrk_seconds=2,
    warmup_seconds=1,
    web_rounds=1,
    inprocess_rounds=3,
    inprocess_alternations=3,
    inprocess_batch=10,
    pipeline_tasks=20,
    scaling_workers=(1, 8),
    scaling_rounds=2,
    fairness_task_seconds=1.0,
    vendor_job_seconds=4.0,
    live_tasks=10,
    serving_rounds=1,
    serving_seconds=2,
    serving_streams=50,
    serving_stream_rounds=1,
    results_file="results-quick.json",
)
