"""The scheduler with real worker clusters (`manage.py qcluster`) and fake vendors.

tests/test_scheduler.py proves each rule in process at chosen instants; here the same rules are
shown end to end, with the timings a person would notice: fairness, backoff that frees the
worker, per-provider concurrency and rate, vendor jobs submitted once, failover, and recovery
from killed clusters. The vendors are tests/fake_providers.py (OpenAI's synchronous images API
and DashScope's asynchronous jobs on one local server, counting what reaches them).

Measured figures are printed (run with -rP or -s to see them); assertions keep the margins the
requirements allow. The machine has 2 cores: one cluster runs at a time.
"""

from __future__ import annotations

import io
import os
import signal
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command

from generator import services
from generator.models import Image, ProviderCall, Task
from generator.services import TaskSettings

from . import cluster as cluster_module
from .cluster import FINAL_STATUSES, QCluster, _report, launch_qcluster, wait_for_final
from .factories import UserFactory
from .fake_providers import FakeVendor, serving, token

pytestmark = pytest.mark.cluster

OPENAI = {"provider": "openai", "model": "dall-e-3", "width": 1024, "height": 1024}
DASHSCOPE = {"provider": "dashscope", "model": "wan2.2-t2i-flash", "width": 512, "height": 512}
OFFLINE = {"provider": "offline", "model": "sketch-v1", "width": 128, "height": 128}
# Fast heartbeats for the tests that kill a cluster: a hold not renewed for 4 s is taken back.
FAST_HEARTBEATS = {"HEARTBEAT_SECONDS": 1, "HEARTBEAT_TIMEOUT_SECONDS": 4}


# --- helpers -------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def many_tasks_allowed(settings) -> None:
    settings.MAX_QUEUED_TASKS_PER_USER = 1000


@pytest.fixture
def fake_vendor() -> Iterator[FakeVendor]:
    """The fake OpenAI + DashScope server (tests/fake_providers.py), for this test."""
    with serving() as vendor:
        yield vendor


@pytest.fixture
def start_killable(start_qcluster, settings, tmp_path, request) -> Iterator[Callable[..., QCluster]]:
    """Like start_qcluster, for clusters the test will SIGKILL (start_qcluster's teardown counts a
    -9 exit as a failure). Uses start_qcluster for the database and the broker-bound async_task."""
    clusters: list[QCluster] = []
    failed_before = request.session.testsfailed

    def start(ready_timeout: float = 60.0, **env: object) -> QCluster:
        started = launch_qcluster(
            media_root=settings.MEDIA_ROOT, work_dir=tmp_path / "qcluster", ready_timeout=ready_timeout, **env
        )
        clusters.append(started)
        return started

    yield start

    for each in clusters:
        each.stop()
    if request.session.testsfailed > failed_before:
        for each in clusters:
            _report(request, f"killable qcluster pid {each.pid} output ({each.log_path})", each.output()[-20000:])


def kill_hard(victim: QCluster) -> None:
    """SIGKILL the cluster's whole process group (main, sentinel, pusher, monitor, workers)."""
    os.killpg(victim.pid, signal.SIGKILL)
    victim.process.wait(timeout=10)
    deadline = time.monotonic() + 10
    while True:
        try:
            os.killpg(victim.pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "processes of the killed cluster are still alive"
        time.sleep(0.02)
    victim.stop()  # nothing left to signal; forgets it, so wait_for_final looks only at live ones


def logs() -> str:
    return "\n".join(f"--- qcluster pid {c.pid} ---\n{c.output()[-8000:]}" for c in cluster_module._running)


def wait_until(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s\n{logs()}")
        time.sleep(interval)


def submit(owner, kind: dict, tok: str | None = None, **overrides) -> Task:
    """A task whose prompt carries a token, so the fake vendor counts its calls."""
    tok = tok or token()
    values = {"prompt": f"{tok} a lighthouse on a cliff at dawn", "num_images": 1, "seed": 7, **kind, **overrides}
    task = services.create_task(owner, TaskSettings(**values))
    task.token = tok
    return task


def all_final(tasks: list[Task], timeout: float) -> list[Task]:
    """Wait (one deadline for all) until every task is final; the fresh rows, tokens kept."""
    deadline = time.monotonic() + timeout
    for task in tasks:
        wait_for_final(task, timeout=max(0.1, deadline - time.monotonic()))
    return [fresh(task) for task in tasks]


def fresh(task: Task) -> Task:
    current = Task.objects.get(pk=task.pk)
    current.token = getattr(task, "token", "")
    return current


def seconds(delta: timedelta | None) -> float:
    assert delta is not None
    return delta.total_seconds()


def cancel_waiting(tasks: list[Task]) -> None:
    """Cancel what is left, so the cluster's workers find nothing more and SIGTERM stops it at once."""
    for task in tasks:
        services.cancel_task(Task.objects.get(pk=task.pk))


def assert_completed(tasks: list[Task]) -> None:
    problems = [
        (str(t.pk), t.provider, t.status, t.error_code, t.error_message) for t in tasks if t.status != "completed"
    ]
    assert not problems, f"{problems}\n{logs()}"


# --- 1. fairness ---------------------------------------------------------------------------


def test_a_newcomer_starts_within_one_provider_call_not_after_the_sixteen_queued(
    start_qcluster, fake_vendor: FakeVendor
):
    call = 6.0  # seconds one generation takes at the (fake) provider
    fake_vendor.sync_delay = call
    start_qcluster(Q_WORKERS=2, **fake_vendor.openai_env(OPENAI_CONCURRENCY=4))
    regulars = [UserFactory() for _ in range(4)]
    queued = [submit(person, OPENAI) for person in regulars for _ in range(4)]
    # The newcomer arrives once each regular has been served (the second pair of calls began):
    # before that, the regulars not yet served are as new as the newcomer and queued earlier, so
    # they rightly go first (arriving with the first pair, the newcomer waits two calls, ~12 s).
    wait_until(lambda: sum(fake_vendor.generations.values()) >= 4, 30, "every regular's first call")

    newcomer = submit(UserFactory(), OPENAI)
    started = wait_until(lambda: fresh(newcomer).started_at, call + 10, "the newcomer's task started")

    wait = seconds(started - fresh(newcomer).created_at)
    print(
        f"\nfairness: the fifth person's task started {wait:.2f} s after it was submitted "
        f"(one call takes {call:g} s; behind the 12 still queued it would have waited ~{12 * call / 2:.0f} s)"
    )
    assert wait < call + 2, wait
    ahead = Task.objects.filter(pk__in=[t.pk for t in queued], started_at__lt=started).count()
    print(f"fairness: {ahead} of the 16 queued tasks had started before it")
    assert ahead <= 4
    cancel_waiting(queued + [newcomer])
    wait_for_final(newcomer, timeout=call + 10)


# --- 2. backoff frees the worker -----------------------------------------------------------


def test_tasks_backing_off_hold_no_worker_so_another_persons_task_runs_at_once(start_qcluster, fake_vendor: FakeVendor):
    backoff, drawing = 20, 2.0
    start_qcluster(
        Q_WORKERS=2,
        OFFLINE_DELAY_SECONDS=drawing,
        PROVIDER_RETRY_BACKOFF_SECONDS=backoff,  # 503: 10–20 s (half to all of it)
        **fake_vendor.openai_env(),
    )
    throttled, overloaded = token(), token()
    fake_vendor.fail_generations(throttled, 429, retry_after=backoff)  # 429 + Retry-After: 20 s
    fake_vendor.fail_generations(overloaded, 503)
    unlucky = UserFactory()
    failing = [submit(unlucky, OPENAI, throttled), submit(unlucky, OPENAI, overloaded)]
    wait_until(lambda: all(fresh(t).status == "retrying" for t in failing), 20, "both failing tasks backing off")

    healthy = submit(UserFactory(), OFFLINE)
    healthy = wait_for_final(healthy, timeout=drawing + 15)

    took = seconds(healthy.finished_at - healthy.created_at)
    backing_off = [fresh(t) for t in failing]
    waits = [seconds(t.next_attempt_at - healthy.finished_at) for t in backing_off if t.next_attempt_at]
    print(
        f"\nbackoff: the healthy task completed {took:.2f} s after submission (drawing takes {drawing:g} s); "
        f"the failing tasks were still backing off for another {', '.join(f'{w:.1f}' for w in waits)} s"
    )
    assert healthy.status == "completed"
    assert took < drawing + 3, took
    assert [t.status for t in backing_off] == ["retrying", "retrying"]
    assert [t.attempts for t in backing_off] == [1, 1]
    assert [t.error_code for t in backing_off] == ["rate_limited", "provider_unavailable"]
    assert all(w > 0 for w in waits) and len(waits) == 2
    assert fake_vendor.generations[throttled] == 1 and fake_vendor.generations[overloaded] == 1
    cancel_waiting(failing)


# --- 3. per-provider concurrency -----------------------------------------------------------


def test_concurrency_one_keeps_one_call_in_flight_while_other_providers_run(start_qcluster, fake_vendor: FakeVendor):
    call, drawing = 1.5, 1.0
    fake_vendor.sync_delay = call
    start_qcluster(Q_WORKERS=4, OFFLINE_DELAY_SECONDS=drawing, **fake_vendor.openai_env(OPENAI_CONCURRENCY=1))
    people = [UserFactory() for _ in range(3)]
    calls = [submit(people[i % 3], OPENAI) for i in range(6)]
    wait_until(lambda: fake_vendor.in_flight >= 1, 20, "the first call at the provider")

    other = wait_for_final(submit(UserFactory(), OFFLINE), timeout=drawing + 15)
    calls = all_final(calls, timeout=6 * call + 30)

    took = seconds(other.finished_at - other.created_at)
    span = seconds(max(t.finished_at for t in calls) - min(t.started_at for t in calls))
    print(
        f"\nconcurrency=1: max calls in flight at the provider {fake_vendor.max_in_flight}; "
        f"6 calls of {call:g} s took {span:.1f} s; the offline task completed in {took:.2f} s"
    )
    assert_completed(calls)
    assert fake_vendor.max_in_flight == 1
    assert all(fake_vendor.generations[t.token] == 1 for t in calls)
    assert other.status == "completed" and took < drawing + 3, took


# --- 4. vendor jobs ------------------------------------------------------------------------


def assert_submitted_once(vendor: FakeVendor, tasks: list[Task]) -> None:
    counts = {t.token: vendor.submissions[t.token] for t in tasks}
    assert all(n == 1 for n in counts.values()), counts
    assert sum(vendor.submissions.values()) == len(tasks)


def test_nine_vendor_jobs_finish_in_two_job_durations_each_submitted_once(start_qcluster, fake_vendor: FakeVendor):
    job = 15.0
    fake_vendor.job_seconds = job
    # DASHSCOPE_CONCURRENCY counts vendor jobs in flight (submitted and watched, not only calls
    # being made): with the default of 2, nine jobs would need five rounds (~75 s). With 5, two
    # rounds, each finishing while the two workers are free for other steps in between.
    # A look every 0.5 s growing to 5 s: a finished job is noticed within a few seconds.
    start_qcluster(
        Q_WORKERS=2, **fake_vendor.dashscope_env(DASHSCOPE_CONCURRENCY=5, DASHSCOPE_POLL_INTERVAL_SECONDS=0.5)
    )
    people = [UserFactory() for _ in range(3)]
    began = time.monotonic()
    tasks = [submit(people[i % 3], DASHSCOPE) for i in range(9)]

    tasks = all_final(tasks, timeout=2 * job + 30)

    took = time.monotonic() - began
    print(
        f"\nvendor jobs: 9 jobs of {job:g} s, concurrency 5, 2 workers: all completed in {took:.1f} s; "
        f"submissions {sum(fake_vendor.submissions.values())}, status checks {sum(fake_vendor.status_checks.values())}"
    )
    assert_completed(tasks)
    assert took < 2 * job + 10, took
    assert_submitted_once(fake_vendor, tasks)
    assert all(Image.objects.filter(task=t).count() == 1 for t in tasks)
    assert not fake_vendor.unexpected


def test_vendor_jobs_survive_a_killed_cluster_without_being_submitted_again(
    start_killable, settings, fake_vendor: FakeVendor
):
    job = 4.0
    fake_vendor.job_seconds = job
    env = {
        "Q_WORKERS": 2,
        **FAST_HEARTBEATS,
        **fake_vendor.dashscope_env(DASHSCOPE_CONCURRENCY=5, DASHSCOPE_POLL_INTERVAL_SECONDS=0.5),
    }
    doomed = start_killable(**env)
    tasks = [submit(UserFactory(), DASHSCOPE) for _ in range(5)]
    wait_until(
        lambda: Task.objects.filter(pk__in=[t.pk for t in tasks], provider_job__isnull=False).count() == 5,
        30,
        "all five jobs recorded",
        interval=0.005,
    )
    killed_at = time.monotonic()
    kill_hard(doomed)
    held = Task.objects.filter(pk__in=[t.pk for t in tasks]).exclude(held_by="").count()

    start_killable(**env)
    tasks = all_final(tasks, timeout=60)

    print(
        f"\nkilled with jobs in flight: {held} of 5 tasks held by the killed workers; all final "
        f"{time.monotonic() - killed_at:.1f} s after the kill; submissions {dict(fake_vendor.submissions)}"
    )
    assert_completed(tasks)
    assert_submitted_once(fake_vendor, tasks)
    assert all(t.attempts == 1 for t in tasks)


def test_vendor_jobs_whose_status_checks_fail_for_a_while_complete_submitted_once(
    start_qcluster, fake_vendor: FakeVendor
):
    fake_vendor.job_seconds = 3.0
    throttled, broken, fine = token(), token(), token()
    fake_vendor.fail_status_checks(throttled, 429, times=3, retry_after=1)
    fake_vendor.fail_status_checks(broken, 500, times=4)
    start_qcluster(
        Q_WORKERS=2, **fake_vendor.dashscope_env(DASHSCOPE_CONCURRENCY=5, DASHSCOPE_POLL_INTERVAL_SECONDS=0.5)
    )
    owner = UserFactory()
    tasks = [submit(owner, DASHSCOPE, tok) for tok in (throttled, broken, fine)]

    tasks = all_final(tasks, timeout=60)

    print(
        f"\nfailing status checks: checks per task {[fake_vendor.status_checks[t.token] for t in tasks]} "
        f"(3×429, 4×500, none); durations {[round(seconds(t.duration), 1) for t in tasks]} s"
    )
    assert_completed(tasks)
    assert_submitted_once(fake_vendor, tasks)
    assert fake_vendor.status_checks[throttled] > 3 and fake_vendor.status_checks[broken] > 4
    assert all(t.attempts == 1 and t.error_code == "" for t in tasks)


# --- 5. rate and failover ------------------------------------------------------------------


def test_a_rate_limit_holds_at_the_provider(start_qcluster, fake_vendor: FakeVendor):
    # 10 per 6 s rather than a realistic 10/m so the test takes ~15 s, not a few minutes.
    count, window = 10, 6.0
    fake_vendor.sync_delay = 0.05
    people = [UserFactory() for _ in range(5)]
    tasks = [submit(people[i % 5], OPENAI) for i in range(25)]
    start_qcluster(Q_WORKERS=2, **fake_vendor.openai_env(OPENAI_RATE="10/6s"))

    tasks = all_final(tasks, timeout=3 * window + 30)

    arrivals = sorted(at for at, _ in fake_vendor.generation_times)
    spans = [arrivals[i + count] - arrivals[i] for i in range(len(arrivals) - count)]
    claims = [
        at.timestamp() for at in ProviderCall.objects.filter(provider="openai").values_list("started_at", flat=True)
    ]
    print(
        f"\nrate 10/6s: {len(arrivals)} calls over {arrivals[-1] - arrivals[0]:.1f} s; the most in any 6 s window "
        f"at the provider {fake_vendor.max_in_window(window)}; the shortest span of 11 consecutive calls "
        f"{min(spans):.2f} s (claims recorded: most in 6 s {fake_vendor.max_in_window(window, claims)})"
    )
    delays = [at - claimed for at, claimed in zip(arrivals, sorted(claims), strict=True)]
    print(f"rate: from claim to the request at the provider: up to {max(delays) * 1000:.0f} ms")
    assert_completed(tasks)
    assert len(arrivals) == 25
    # The scheduler counts a call when it claims it; the request reaches the provider a few
    # milliseconds later, by a varying amount. The claims obey the window exactly; at the provider,
    # 0.25 s of that jitter is tolerated at a window's edge.
    assert fake_vendor.max_in_window(window, claims) <= count
    assert fake_vendor.max_in_window(window - 0.25) <= count, min(spans)


def test_a_provider_that_keeps_failing_moves_the_task_once_to_its_fallback(start_qcluster, fake_vendor: FakeVendor):
    fake_vendor.fail_generations("", 503)  # every generation, forever
    start_qcluster(
        Q_WORKERS=2,
        PROVIDER_MAX_ATTEMPTS=2,
        PROVIDER_RETRY_BACKOFF_SECONDS=0.5,
        **fake_vendor.openai_env(OPENAI_FALLBACK="offline:sketch-v1"),
    )
    tok = token()
    task = wait_for_final(submit(UserFactory(), OPENAI, tok), timeout=30)

    print(
        f"\nfailover: ended on {task.provider}:{task.model} after {fake_vendor.generations[tok]} calls to "
        f"openai; failed_over_from={task.failed_over_from}"
    )
    assert task.status == "completed", (task.error_code, task.error_message)
    assert (task.provider, task.model) == ("offline", "sketch-v1")
    moved = task.failed_over_from
    assert moved["provider"] == "openai" and moved["model"] == "dall-e-3"
    assert moved["code"] == "provider_unavailable" and moved["attempts"] == 2
    assert sum(fake_vendor.generations.values()) == 2
    assert task.attempts == 1 and Image.objects.filter(task=task).count() == 1


# --- 6. a killed worker's task is taken back -----------------------------------------------


@pytest.mark.parametrize(
    ("heartbeats", "limit"),
    [
        pytest.param({"HEARTBEAT_SECONDS": 1, "HEARTBEAT_TIMEOUT_SECONDS": 10}, 10 + 10, id="fast-heartbeat"),
        # The defaults (a beat every 5 s, taken back after 30 s without one): within 60 s.
        pytest.param({}, 60, id="default-heartbeat"),
    ],
)
def test_a_task_whose_cluster_was_killed_mid_call_is_taken_back_and_completed(
    start_killable, fake_vendor: FakeVendor, heartbeats: dict, limit: float
):
    call = 5.0
    fake_vendor.sync_delay = call
    env = {"Q_WORKERS": 2, **heartbeats, **fake_vendor.openai_env()}
    doomed = start_killable(**env)
    tok = token()
    task = submit(UserFactory(), OPENAI, tok)
    wait_until(lambda: fake_vendor.in_flight == 1, 30, "the call reached the provider")
    time.sleep(1)  # mid-call

    killed_at = time.time()
    kill_hard(doomed)
    last_beat = Task.objects.get(pk=task.pk).heartbeat_at.timestamp()
    start_killable(**env)
    task = wait_for_final(task, timeout=limit + call + 30)

    second_call = [at for at, each in fake_vendor.generation_times if each == tok][1]
    taken_back = second_call - killed_at
    print(
        f"\nkilled mid-call ({heartbeats or 'default heartbeats'}): called again {taken_back:.1f} s after the kill "
        f"(its last heartbeat was {killed_at - last_beat:.1f} s before it); "
        f"completed {task.finished_at.timestamp() - killed_at:.1f} s after the kill"
    )
    assert task.status == "completed", (task.error_code, task.error_message)
    assert task.attempts == 2 and fake_vendor.generations[tok] == 2
    assert taken_back < limit, taken_back


# --- 7. chaos ------------------------------------------------------------------------------


@pytest.mark.timeout(900)
def test_chaos_three_hundred_tasks_while_clusters_are_killed_every_ten_seconds(
    start_killable, settings, fake_vendor: FakeVendor
):
    fake_vendor.sync_delay = 1.0
    fake_vendor.job_seconds = 1.0
    env = {
        "Q_WORKERS": 3,
        "OFFLINE_DELAY_SECONDS": 0.5,
        **FAST_HEARTBEATS,
        **fake_vendor.openai_env(OPENAI_CONCURRENCY=4),
        **fake_vendor.dashscope_env(DASHSCOPE_CONCURRENCY=8, DASHSCOPE_POLL_INTERVAL_SECONDS=0.5),
    }
    # prune_media: any file without a row counts as an orphan, however new (no grace period).
    settings.TASK_TIMEOUT, settings.RECOVERY_GRACE_SECONDS = 0, 0
    people = [UserFactory() for _ in range(10)]
    kinds = [OFFLINE, OPENAI, DASHSCOPE]
    began = time.monotonic()
    current = start_killable(**env)
    tasks = [submit(people[i % 10], kinds[i % 3]) for i in range(300)]
    ids = [t.pk for t in tasks]

    kills: list[float] = []  # time.time() of each SIGKILL
    deadline = time.monotonic() + 600
    while True:
        lived = time.monotonic()
        while time.monotonic() - lived < 10:
            if not Task.objects.filter(pk__in=ids).exclude(status__in=FINAL_STATUSES).exists():
                break
            time.sleep(0.2)
        else:
            assert time.monotonic() < deadline, f"tasks still running after 600 s\n{logs()}"
            kills.append(time.time())
            kill_hard(current)
            current = start_killable(**env)
            continue
        break
    took = time.monotonic() - began
    current.stop()

    tasks = [fresh(t) for t in tasks]
    by_status = {s: sum(t.status == s for t in tasks) for s in ("completed", "failed", "canceled")}
    sync = [t for t in tasks if t.provider == "openai"]
    jobs = [t for t in tasks if t.provider == "dashscope"]

    def cut_by_a_kill(arrivals: list[float], lasting: float) -> bool:
        """The first of these calls was under way when a cluster was killed (so its answer was lost)."""
        return any(arrivals[0] <= kill <= arrivals[0] + lasting for kill in kills)

    def arrivals(times: list[tuple[float, str]], tok: str) -> list[float]:
        return [at for at, each in times if each == tok]

    # A synchronous call cut by a kill has no answer to keep: the task is taken back and called again.
    repeated_calls = [t for t in sync if fake_vendor.generations[t.token] > 1]
    # A job submission cut by a kill between the vendor's receipt and the worker recording the job's
    # id cannot be known afterwards (DashScope takes no idempotency key): it is submitted again.
    repeated_jobs = [t for t in jobs if fake_vendor.submissions[t.token] > 1]
    retried = [t for t in tasks if t.attempts > 1]
    out = io.StringIO()
    call_command("prune_media", "--dry-run", verbosity=2, stdout=out, stderr=out)
    print(
        f"\nchaos: 300 tasks from 10 people, {len(kills)} kills, {took:.0f} s: {by_status}; {len(retried)} tasks "
        f"needed more than one attempt; {len(repeated_calls)} sync calls repeated after a kill cut them; "
        f"async submissions {sum(fake_vendor.submissions.values())} for {len(jobs)} jobs "
        f"({len(repeated_jobs)} submitted again after a kill cut the submission); failures "
        f"{sorted({(t.error_code, t.error_message) for t in tasks if t.status == 'failed'})}\n"
        f"prune_media --dry-run (no grace period): {out.getvalue().strip()}"
    )
    for t in tasks:
        assert t.status == "completed" or (t.status == "failed" and t.error_message), (t.pk, t.status, t.error_code)
    # Sync: never more calls than attempts, and every repeat is a call a kill cut.
    over = [
        (t.token, fake_vendor.generations[t.token], t.attempts)
        for t in sync
        if fake_vendor.generations[t.token] > t.attempts
    ]
    assert not over, over
    uncut = [t.token for t in repeated_calls if not cut_by_a_kill(arrivals(fake_vendor.generation_times, t.token), 3)]
    assert not uncut, (uncut, kills)
    # Async: each job once, except a submission a kill cut before its job could be recorded, and
    # then the task watched the job of its last submission only.
    twice = {t.token: fake_vendor.submissions[t.token] for t in repeated_jobs}
    uncut = [tok for tok in twice if not cut_by_a_kill(arrivals(fake_vendor.submission_times, tok), 2)]
    assert not uncut and all(n == 2 for n in twice.values()), (twice, uncut, kills)
    assert len(repeated_jobs) <= len(kills)
    for t in jobs:
        if t.status == "completed":
            last = max((j for j in fake_vendor.jobs.values() if j.token == t.token), key=lambda j: j.submitted)
            assert t.provider_job["state"]["task_id"] == last.id, t.pk
    for t in tasks:
        assert Image.objects.filter(task=t).count() == (t.num_images if t.status == "completed" else 0), t.pk
    report = out.getvalue()
    assert "0 images missing the original, 0 images missing the thumbnail" in report, report
    media = Path(settings.MEDIA_ROOT)
    # A file without a row can only be one a worker wrote just before it was killed (files are
    # written before their rows commit); prune_media deletes those once they are old enough.
    orphans = [line.removeprefix("orphan file ") for line in report.splitlines() if line.startswith("orphan file ")]
    written = {name: (media / name).stat().st_mtime for name in orphans}
    unexplained = {name: at for name, at in written.items() if not any(at <= kill <= at + 2 for kill in kills)}
    assert not unexplained, (unexplained, kills, report)
    for image in Image.objects.all():
        assert (media / image.file.name).is_file() and (media / image.thumbnail.name).is_file(), image.pk
    assert not fake_vendor.unexpected
