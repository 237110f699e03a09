"""The scheduler in process: the fair claim, provider limits, backoff, failover and vendor jobs.

Claims take `now`, so every rule that depends on the clock is tested at chosen instants. The
same rules with real worker clusters and fake vendors: tests/test_scheduler_cluster.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from generator import services
from generator.models import ProviderCall, Task
from generator.providers import PermanentProviderError, TransientProviderError
from generator.providers.base import JobCheck
from generator.scheduler import claim, dispatcher, limits, steps
from generator.scheduler.inline import run_task
from generator.scheduler.recovery import take_back_stale

from .factories import TaskFactory, UserFactory, claimed
from .fakes import ScriptedJobProvider

pytestmark = pytest.mark.django_db
SECOND = timedelta(seconds=1)


@pytest.fixture
def provider_limits(settings):
    """set_limits(offline={"CONCURRENCY": 2}, ...) replaces PROVIDER_LIMITS for the test."""

    def set_limits(**per_provider: dict) -> None:
        settings.PROVIDER_LIMITS = {
            name: {"CONCURRENCY": 4, "RATE": "", "FALLBACK": "", **values} for name, values in per_provider.items()
        }

    return set_limits


@pytest.fixture
def jobs(settings, scripted):
    settings.EXTRA_PROVIDERS = {"scripted": "tests.fakes.ScriptedProvider", "jobs": "tests.fakes.ScriptedJobProvider"}
    ScriptedJobProvider.reset()
    return ScriptedJobProvider


def look(task: Task) -> Task:
    """The task as a worker holds it for its next look at the vendor job, due or not."""
    Task.objects.filter(pk=task.pk).update(next_attempt_at=timezone.now())
    return claimed(task)


def queued(owner, minutes_ago: float, **fields) -> Task:
    task = TaskFactory(owner=owner, **fields)
    Task.objects.filter(pk=task.pk).update(created_at=timezone.now() - timedelta(minutes=minutes_ago))
    task.refresh_from_db()
    return task


# --- the fair claim ------------------------------------------------------------------------


def test_the_person_with_fewest_tasks_running_goes_first_then_the_oldest_task():
    busy, idle = UserFactory(), UserFactory()
    claimed(queued(busy, 30))
    busy_waiting = queued(busy, 20)
    idle_newer, idle_older = queued(idle, 5), queued(idle, 10)

    order = [claim.claim_next("w").pk for _ in range(3)]

    # idle has nothing running: its oldest task, then its next (idle now runs 1 = busy's 1;
    # busy's task is older than idle's last), then the rest.
    assert order == [idle_older.pk, busy_waiting.pk, idle_newer.pk]


def test_someone_new_goes_before_people_who_have_been_served_all_along():
    # Four people with a long queue each, one task of each running: a fifth person's single
    # task is next as soon as a slot frees, not after the sixteen queued before it.
    regulars = [UserFactory() for _ in range(4)]
    for n, person in enumerate(regulars):
        first = queued(person, 60 - n)
        claimed(first)
        for k in range(3):
            queued(person, 50 - n - k)
    Task.objects.filter(status="processing").update(status="completed", held_by="")  # all finished
    newcomer = queued(UserFactory(), 0)

    assert claim.claim_next("w").pk == newcomer.pk


def test_one_picture_does_not_wait_behind_batches_of_people_not_yet_served():
    # Two workers took the first tasks of two of four people who each queued four; then someone
    # queues one picture. When the workers free up, it goes before the two unserved batches.
    people = [UserFactory() for _ in range(4)]
    for n, person in enumerate(people):
        for k in range(4):
            queued(person, 60 - n - k / 10)
    first, second = claim.claim_next("w1"), claim.claim_next("w2")
    assert {first.owner_id, second.owner_id} == {people[0].pk, people[1].pk}
    newcomer = queued(UserFactory(), 0)
    Task.objects.filter(status="processing").update(status="completed", held_by="")

    assert claim.claim_next("w1").pk == newcomer.pk
    assert claim.claim_next("w2").owner_id == people[2].pk  # then the oldest of the unserved


def test_a_provider_at_its_concurrency_is_passed_over_for_another_providers_task(provider_limits, scripted):
    provider_limits(offline={"CONCURRENCY": 1}, scripted={"CONCURRENCY": 4})
    person = UserFactory()
    claimed(queued(person, 10))  # offline: 1 in flight, its limit
    waiting_offline = queued(person, 9)
    scripted_task = queued(UserFactory(), 1, provider="scripted", model="fixed")

    assert claim.claim_next("w").pk == scripted_task.pk
    assert claim.claim_next("w") is None  # offline is full, nothing else may run
    Task.objects.filter(provider="offline", status="processing").update(status="completed", held_by="")
    assert claim.claim_next("w").pk == waiting_offline.pk


def test_a_rate_of_10_per_minute_is_never_exceeded_at_any_instant(provider_limits):
    provider_limits(offline={"CONCURRENCY": 100, "RATE": "10/m"})
    person = UserFactory()
    for n in range(25):
        queued(person, 100 - n)
    start = timezone.now()
    started = []
    for second in range(0, 190, 5):  # a worker free every 5 s for three minutes
        now = start + timedelta(seconds=second)
        while claim.claim_next("w", now=now) is not None:
            started.append(now)

    assert len(started) == 25
    for moment in started:  # every sliding window of 60 s holds at most 10 starts
        assert sum(1 for other in started if moment <= other < moment + timedelta(seconds=60)) <= 10
    assert started[10] - started[0] >= timedelta(seconds=60)
    assert ProviderCall.objects.filter(provider="offline").count() == 25


def test_limits_read_rates_like_django_ratelimit_and_refuse_nonsense():
    assert limits.Rate.parse("10/m") == limits.Rate(10, 60, "10/m")
    assert limits.Rate.parse("5/10s").seconds == 10
    assert limits.Rate.parse("") is None
    for bad in ("ten/m", "10", "0/m", "10/w"):
        with pytest.raises(limits.InvalidLimit):
            limits.Rate.parse(bad)
    assert limits.Fallback.parse("offline:sketch-v1") == limits.Fallback("offline", "sketch-v1")
    with pytest.raises(limits.InvalidLimit):
        limits.Fallback.parse("offline")


def test_defaults_one_webui_call_two_dashscope_jobs_four_otherwise(settings):
    assert limits.limit_for("automatic1111").concurrency == 1
    assert limits.limit_for("dashscope").concurrency == 2
    assert limits.limit_for("openai").concurrency == 4
    assert limits.limit_for("offline").rate is None


# --- backoff: nobody sleeps ------------------------------------------------------------------


def test_a_transient_error_releases_the_task_until_its_next_attempt_is_due(user, scripted, settings):
    settings.PROVIDER_RETRY_BACKOFF_SECONDS = 2
    scripted.script = [TransientProviderError("rate_limited", "The provider is busy.", retry_after=30)]
    task = TaskFactory(owner=user, provider="scripted", model="fixed")

    before = timezone.now()
    steps.run_step(claimed(task))

    task.refresh_from_db()
    assert (task.status, task.held_by, task.attempts) == ("retrying", "", 1)
    assert task.next_attempt_at >= before + timedelta(seconds=30)  # at least the provider's Retry-After
    assert "Trying again in 30 s (attempt 2 of 3)" in task.error_text
    assert claim.claim_next("w", now=task.next_attempt_at - SECOND) is None
    assert claim.claim_next("w", now=task.next_attempt_at).pk == task.pk


def test_backoff_grows_with_jitter_and_is_capped(settings):
    settings.PROVIDER_RETRY_BACKOFF_SECONDS = 2
    settings.PROVIDER_RETRY_MAX_SECONDS = 20
    delays = {attempt: [steps.backoff_seconds(attempt) for _ in range(200)] for attempt in (1, 2, 3, 8)}
    assert all(1 <= d <= 2 for d in delays[1]) and all(2 <= d <= 4 for d in delays[2])
    assert all(4 <= d <= 8 for d in delays[3]) and len(set(delays[3])) > 100  # jittered, not fixed
    assert max(delays[8]) == 20 and steps.backoff_seconds(1, retry_after=500) == 20  # capped


# --- failover ---------------------------------------------------------------------------------


def test_a_task_out_of_attempts_moves_once_to_the_fallback_keeping_what_it_supports(
    user, scripted, provider_limits, settings
):
    settings.PROVIDER_MAX_ATTEMPTS = 2
    settings.PROVIDER_RETRY_BACKOFF_SECONDS = 0
    provider_limits(scripted={"FALLBACK": "offline:sketch-v1"}, offline={})
    busy = TransientProviderError("provider_unavailable", "The provider had a temporary problem.")
    scripted.script = [busy, busy]
    task = TaskFactory(owner=user, provider="scripted", model="fixed", width=512, height=512, seed=7, num_images=2)

    task = run_task(str(task.pk))

    assert task.status == Task.Status.COMPLETED, task.error_text
    assert (task.provider, task.model, task.attempts) == ("offline", "sketch-v1", 1)
    assert (task.width, task.height, task.seed, task.num_images) == (512, 512, 7, 2)
    assert task.failed_over_from["provider"] == "scripted" and task.failed_over_from["attempts"] == 2
    assert task.failed_over_from["code"] == "provider_unavailable"
    assert task.failover_text == ("First tried scripted (fixed): The provider had a temporary problem.")
    assert scripted.calls == 2 and len(task.ordered_images) == 2


def test_an_exhausted_quota_moves_at_once_and_only_once(user, scripted, provider_limits, settings):
    provider_limits(scripted={"FALLBACK": "scripted:fixed"})  # a fallback that fails the same way
    quota = PermanentProviderError("quota_exhausted", "The provider account has run out of credit or quota.")
    scripted.script = [quota, quota]
    task = TaskFactory(owner=user, provider="scripted", model="fixed")

    task = run_task(str(task.pk))

    assert (task.status, task.error_code) == ("failed", "quota_exhausted")
    assert scripted.calls == 2 and task.failed_over_from["code"] == "quota_exhausted"


def test_fallback_settings_fit_the_fallback_model():
    task = TaskFactory.build(width=1000, height=600, steps=30, guidance_scale=7, negative_prompt="fog", num_images=4)
    model = ScriptedJobProvider().models()[0]
    fixed_sizes = type(model)(
        id="f", label="F", sizes=((512, 512), (768, 512)), max_images=1, supports_negative_prompt=False
    )
    assert steps.adapted_settings(task, fixed_sizes) == {
        "num_images": 1,
        "negative_prompt": "",
        "steps": None,
        "guidance_scale": None,
        "width": 768,
        "height": 512,
    }


# --- vendor jobs: submitted once, watched without a worker -------------------------------------


def test_a_job_is_submitted_once_then_only_looked_at(user, jobs, settings):
    jobs.checks = [JobCheck(finished=False, progress=50), TransientProviderError("rate_limited", "busy", retry_after=3)]
    task = TaskFactory(owner=user, provider="jobs", model="job-model", num_images=2)

    steps.run_step(claimed(task))  # submit
    task.refresh_from_db()
    assert (task.status, task.held_by, task.attempts) == ("processing", "", 1)
    assert task.provider_job["state"] == {"job_id": "job-1", "request_id": "req-1"}
    assert task.provider_request_id == "req-1" and task.is_watching_job and task.is_cancelable

    steps.run_step(look(task))  # still running at the vendor
    task.refresh_from_db()
    assert (task.status, task.attempts, task.progress) == ("processing", 1, 47)

    steps.run_step(look(task))  # the look fails: looked at again later, never resubmitted
    task.refresh_from_db()
    assert (task.status, task.attempts, task.provider_job["check_errors"]) == ("processing", 1, 1)
    assert task.next_attempt_at >= timezone.now() + timedelta(seconds=2)

    steps.run_step(look(task))  # done
    task.refresh_from_db()
    assert task.status == "completed" and len(task.ordered_images) == 2
    assert len(jobs.submitted) == 1 and jobs.looked == 3


def test_a_job_still_running_at_its_deadline_is_canceled_at_the_vendor_and_times_out(user, jobs):
    jobs.checks = [JobCheck(finished=False, progress=50)]
    task = TaskFactory(owner=user, provider="jobs", model="job-model")
    steps.run_step(claimed(task))
    job = {**task.provider_job, "deadline": (timezone.now() - SECOND).isoformat()}
    Task.objects.filter(pk=task.pk).update(provider_job=job)

    steps.run_step(look(task))

    task.refresh_from_db()
    assert (task.status, task.error_code) == ("failed", "timeout")
    assert task.error_text == "The provider did not finish the picture within 60 seconds."
    assert jobs.canceled == [{"job_id": "job-1", "request_id": "req-1"}] and len(jobs.submitted) == 1


def test_pictures_that_succeeded_are_kept_when_some_failed_at_the_vendor(user, jobs, media_root):
    task = TaskFactory(owner=user, provider="jobs", model="job-model", num_images=3)
    steps.run_step(claimed(task))
    one = ScriptedJobProvider().check_job(steps.GenerationRequest.from_task(task), {}, lambda s: None).images[:1]
    jobs.checks = [JobCheck(finished=True, images=one, failed=2)]

    steps.run_step(look(task))

    task.refresh_from_db()
    assert task.status == "completed" and len(task.ordered_images) == 1
    assert task.note_text == "2 of 3 pictures failed at the provider; the others were kept."


def test_a_worker_that_died_after_the_vendor_answered_leaves_a_job_the_next_step_watches(user, jobs):
    task = claimed(TaskFactory(owner=user, provider="jobs", model="job-model"))
    task.record_job(
        {"state": {"job_id": "job-9"}, "deadline": (timezone.now() + timedelta(minutes=1)).isoformat(), "interval": 1.0}
    )
    # The worker is gone: its hold goes stale and is taken back as a look, not a submission.
    Task.objects.filter(pk=task.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    assert take_back_stale().resumed == [task.pk]
    task = run_task(str(task.pk))
    assert task.status == "completed" and jobs.submitted == [] and task.attempts == 1


def test_canceling_a_watched_job_cancels_it_at_the_vendor(user, jobs, django_capture_on_commit_callbacks):
    jobs.checks = [JobCheck(finished=False)]
    task = TaskFactory(owner=user, provider="jobs", model="job-model")
    steps.run_step(claimed(task))
    task.refresh_from_db()

    with django_capture_on_commit_callbacks(execute=True):
        assert services.cancel_task(task)

    assert task.status == "canceled" and jobs.canceled == [{"job_id": "job-1", "request_id": "req-1"}]
    assert claim.claim_next("w") is None  # nothing left to look at


# --- queue, don't refuse -----------------------------------------------------------------------


def test_only_waiting_tasks_count_against_the_queue_cap(user, settings):
    settings.MAX_QUEUED_TASKS_PER_USER = 2
    claimed(TaskFactory(owner=user))  # running: not waiting
    TaskFactory(owner=user, status="retrying")
    TaskFactory(owner=user)
    with pytest.raises(services.TooManyQueuedTasks) as refused:
        services.create_task(user, services.settings_of(TaskFactory.build()))
    assert str(refused.value).startswith("You already have 2 tasks waiting to run.")
    Task.objects.filter(owner=user, status="retrying").update(status="failed")
    assert services.create_task(user, services.settings_of(TaskFactory.build())).pk


# --- the dispatcher ------------------------------------------------------------------------------


def test_the_dispatcher_counts_only_what_may_run_now(provider_limits, jobs):
    provider_limits(offline={"CONCURRENCY": 2}, scripted={"CONCURRENCY": 4, "RATE": "1/m"}, jobs={"CONCURRENCY": 1})
    person = UserFactory()
    claimed(TaskFactory(owner=person))  # offline: 1 of 2 in flight
    for _ in range(3):
        TaskFactory(owner=person)  # offline: 1 slot free
    for _ in range(3):
        TaskFactory(owner=person, provider="scripted", model="fixed")  # at most one call per minute
    watched = TaskFactory(owner=person, provider="jobs", model="job-model")
    steps.run_step(claimed(watched))  # a vendor job, its next look not yet due
    TaskFactory(owner=person, provider="jobs", model="job-model")  # jobs: full
    later = TaskFactory(owner=person, status="retrying")
    Task.objects.filter(pk=later.pk).update(next_attempt_at=timezone.now() + timedelta(minutes=1))
    now = timezone.now()

    assert dispatcher.runnable_now(now) == 1 + 1
    assert dispatcher.runnable_now(now + timedelta(seconds=2)) == 1 + 1 + 1  # the look fell due


def test_a_tick_tops_the_queue_up_to_one_message_per_free_worker(monkeypatch, provider_limits):
    provider_limits(offline={"CONCURRENCY": 10})
    for _ in range(6):
        TaskFactory()
    sent: list[int] = []
    monkeypatch.setattr(dispatcher, "wake", lambda count, broker=None: sent.append(count))
    monkeypatch.setattr(dispatcher, "queued_messages", lambda broker=None: 1)

    assert dispatcher.tick(workers=4) == 3  # 6 runnable, 4 workers, 1 message already waiting
    assert sent == [3]


def test_new_tasks_share_one_broker_per_process(user, monkeypatch, django_capture_on_commit_callbacks):
    """Each new broker opens a connection (on Redis, with a handshake): submitting must not
    make one per task. A forked process (another pid) makes its own."""
    from django_q.conf import Conf

    from generator.scheduler import queue

    made = []

    def counting_broker():
        made.append(1)
        return real_broker()

    real_broker = queue.get_broker
    monkeypatch.setattr(queue, "get_broker", counting_broker)
    monkeypatch.setattr(queue, "_SHARED", {})
    monkeypatch.setattr(Conf, "SYNC", False)  # queue the messages; no worker runs here
    for n in range(5):
        kite = services.TaskSettings(prompt=f"a kite {n}", provider="offline", model="sketch-v1", width=64, height=64)
        with django_capture_on_commit_callbacks(execute=True) as woken:
            services.create_task(user, kite)
        assert woken  # the message is sent once the task is committed
    assert queue.queued_messages() >= 1
    assert len(made) == 1
    monkeypatch.setattr(queue.os, "getpid", lambda: -1)
    queue.queued_messages()
    assert len(made) == 2
