"""Live progress and Stop: what providers report while they work, what a generating card shows,
and a stop that ends a task canceled with nothing kept (docs/SCHEDULING.md, "Stop")."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.cache import cache
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from django_q.conf import Conf

from generator import progress, services
from generator.models import Image, Task
from generator.providers import GeneratedImage
from generator.providers.base import GenerationRequest, GenerationStopped
from generator.providers.offline import OfflineProvider, draw_sketch
from generator.scheduler import steps, watch
from generator.scheduler.inline import run_task

from .factories import TaskFactory, claimed
from .fake_webui import FakeWebUI, serving

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")


class Report:
    """A LiveReport that records: what a provider reports, and a Stop the test presses."""

    def __init__(self) -> None:
        self.percents: list[int] = []
        self.pictures: list[bytes] = []
        self.stop = threading.Event()

    def __call__(self, percent: int) -> None:
        self.percents.append(percent)

    def preview(self, image: bytes) -> None:
        self.pictures.append(image)

    @property
    def stop_requested(self) -> bool:
        return self.stop.is_set()


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.02)


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).rglob("*") if p.is_file())


@pytest.fixture(autouse=True)
def fresh_estimates():
    """Estimates and previews live in the cache, which outlives each test's database."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def webui(fake_webui: FakeWebUI, configure_provider):
    """The provider pointed at the fake WebUI, looking every 50 ms."""
    fake_webui.step_seconds = 0.03
    return configure_provider("automatic1111", BASE_URL=fake_webui.url, PROGRESS_SECONDS=0.05)


@pytest.fixture
def fake_webui():
    with serving() as webui:
        yield webui


def request_for(steps_: int = 30, num_images: int = 1) -> GenerationRequest:
    return GenerationRequest(prompt="p", model="default", width=64, height=64, num_images=num_images, steps=steps_)


# --- the WebUI: /sdapi/v1/progress and /sdapi/v1/interrupt -------------------------------------


def test_the_webui_reports_rising_progress_and_the_picture_so_far(webui, fake_webui):
    report = Report()
    results = webui.generate(request_for(steps_=30, num_images=2), progress=report)
    assert len(results) == 2
    looked = [percent for percent in report.percents if percent < 100]
    assert len(looked) >= 3 and looked == sorted(looked) and looked[-1] > looked[0]
    assert all(0 <= percent <= 99 for percent in looked) and report.percents[-1] == 100
    assert report.pictures and all(picture.startswith(b"\x89PNG") for picture in report.pictures)
    seen = fake_webui.snapshot()
    # Asked about by its own name (/internal/progress), never about whatever the box runs.
    [job] = [body["force_task_id"] for body in fake_webui.calls]
    assert set(seen["named_looks"]) == {job} and seen["looks"] == [] and seen["interrupts"] == []


def test_without_live_preview_no_picture_is_taken(fake_webui, configure_provider):
    fake_webui.step_seconds = 0.02
    provider = configure_provider("automatic1111", BASE_URL=fake_webui.url, PROGRESS_SECONDS=0.05, LIVE_PREVIEW=False)
    report = Report()
    provider.generate(request_for(steps_=20), progress=report)
    assert report.pictures == [] and len(report.percents) >= 2


@pytest.mark.parametrize("current_task", ["null", "name", "absent"])
def test_a_webui_without_internal_progress_is_followed_through_sdapi_progress(webui, fake_webui, current_task):
    """Before 1.6 (and in forks without /internal/progress): GET /sdapi/v1/progress, the picture
    asked for at most every PREVIEW_SECONDS, `skip_current_image` otherwise."""
    fake_webui.by_name, fake_webui.current_task_field = False, current_task
    report = Report()
    webui.generate(request_for(steps_=40), progress=report)
    seen = fake_webui.snapshot()
    assert len(seen["named_looks"]) == 1  # asked once, then never again
    assert len(seen["looks"]) >= 3 and False in seen["looks"] and True in seen["looks"]
    assert [percent for percent in report.percents if percent < 100] and report.pictures


def test_without_live_preview_sdapi_progress_always_skips_the_picture(fake_webui, configure_provider):
    fake_webui.step_seconds, fake_webui.by_name = 0.02, False
    provider = configure_provider("automatic1111", BASE_URL=fake_webui.url, PROGRESS_SECONDS=0.05, LIVE_PREVIEW=False)
    report = Report()
    provider.generate(request_for(steps_=20), progress=report)
    looks = fake_webui.snapshot()["looks"]
    assert looks and all(looks) and report.pictures == []


def test_stop_interrupts_the_webui_which_answers_early_and_nothing_is_returned(webui, fake_webui):
    report = Report()
    outcome: list[object] = []

    def call() -> None:
        try:
            outcome.append(webui.generate(request_for(steps_=200), progress=report))
        except GenerationStopped as stopped:
            outcome.append(stopped)

    thread = threading.Thread(target=call)
    thread.start()
    wait_for(lambda: len(report.percents) >= 2)
    report.stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive() and isinstance(outcome[0], GenerationStopped)
    seen = fake_webui.snapshot()
    [job] = [body["force_task_id"] for body in fake_webui.calls]
    assert seen["interrupts"] == [job]  # once, and for this call
    [answered] = seen["answered"]
    assert answered["interrupted"] and answered["steps"] < 200  # it ended early


def test_another_callers_generation_is_neither_reported_nor_interrupted(webui, fake_webui):
    """The WebUI runs one call at a time: a call waiting behind someone else's must not take
    that one's progress, nor interrupt it when stopped; it interrupts its own once it runs."""
    first, second = Report(), Report()
    done: list[object] = []
    ahead = threading.Thread(target=lambda: done.append(webui.generate(request_for(steps_=40), progress=first)))
    ahead.start()
    wait_for(lambda: len(first.percents) >= 1)
    second.stop.set()  # stopped while it waits its turn

    with pytest.raises(GenerationStopped):
        webui.generate(request_for(steps_=40), progress=second)
    ahead.join(timeout=10)
    seen = fake_webui.snapshot()
    first_job, second_job = (body["force_task_id"] for body in fake_webui.calls)
    assert seen["interrupts"] == [second_job]
    assert seen["answered"][0] == {"steps": 40, "interrupted": False}  # the first ran to its end
    assert second.percents == []  # it never reported the first call's progress as its own
    assert len(done[0]) == 1


@pytest.mark.parametrize("by_name", [True, False])
def test_a_call_waiting_behind_another_named_one_takes_none_of_its_progress(webui, fake_webui, by_name):
    """With /internal/progress, or where /sdapi/v1/progress names the running call (a fork)."""
    fake_webui.by_name, fake_webui.current_task_field = by_name, "name"
    first, second = Report(), Report()
    ahead = threading.Thread(target=lambda: webui.generate(request_for(steps_=30), progress=first))
    ahead.start()
    wait_for(lambda: len(first.percents) >= 1)
    later = webui.generate(request_for(steps_=10), progress=second)
    ahead.join(timeout=10)
    assert len(later) == 1
    # Its first report is its own early progress, not the first call's late one.
    looked = [percent for percent in second.percents if percent < 100]
    assert looked == sorted(looked)
    assert not looked or looked[0] < 90


def test_a_failing_progress_endpoint_never_fails_the_generation(fake_webui, configure_provider, monkeypatch):
    provider = configure_provider("automatic1111", BASE_URL=fake_webui.url, PROGRESS_SECONDS=0.02)
    monkeypatch.setattr(type(provider), "progress_of", lambda self, job, preview_id: 1 / 0)
    monkeypatch.setattr(type(provider), "look", lambda self, want_picture: 1 / 0)
    report = Report()
    assert len(provider.generate(request_for(steps_=10), progress=report)) == 1
    assert report.percents == [100]


# --- the offline sketcher: progress per picture -----------------------------------------------


def test_the_offline_sketch_reports_each_picture_and_shows_it():
    report = Report()
    results = OfflineProvider().generate(request_for(num_images=4), progress=report)
    assert report.percents == [25, 50, 75, 100] and len(results) == 4
    assert report.pictures == [result.data for result in results[:3]]  # the last one is the result


class _StopAfterFirst(Report):
    """Stop is pressed while the first picture is drawn."""

    def __call__(self, percent: int) -> None:
        super().__call__(percent)
        self.stop.set()


def test_a_stopped_offline_sketch_draws_no_more_pictures():
    report = _StopAfterFirst()
    with pytest.raises(GenerationStopped):
        OfflineProvider().generate(request_for(num_images=3), progress=report)
    assert report.percents == [33]


def test_an_offline_task_writes_its_progress_per_picture(user, monkeypatch):
    task = TaskFactory(owner=user, num_images=4)
    written: list[int] = []
    original = Task.report_progress

    def record(self, percent):
        written.append(percent)
        return original(self, percent)

    monkeypatch.setattr(Task, "report_progress", record)
    run_task(str(task.pk))
    task.refresh_from_db()
    assert task.status == Task.Status.COMPLETED and task.progress == 100
    # 10 % when it starts, then the provider's share (10–85 %) per picture.
    assert written == [28, 47, 66, 85]


# --- Stop through the scheduler -----------------------------------------------------------------


def test_any_unfinished_task_can_be_stopped_and_a_finished_one_cannot(user, completed_task):
    waiting = TaskFactory(owner=user)
    generating = claimed(TaskFactory(owner=user))
    assert waiting.is_cancelable and generating.is_cancelable and generating.is_generating
    assert services.cancel_task(waiting) and services.cancel_task(generating)
    assert {Task.objects.get(pk=pk).status for pk in (waiting.pk, generating.pk)} == {"canceled"}
    assert not completed_task.is_cancelable and not services.cancel_task(completed_task)
    assert Task.objects.get(pk=completed_task.pk).status == "completed"


def test_an_answer_arriving_after_stop_is_discarded(user, scripted, media_root):
    """A provider that cannot be interrupted (an OpenAI-style call): the task shows canceled at
    once; when the pictures arrive, none is kept, no file is written."""
    task = TaskFactory(owner=user, provider="scripted", model="fixed", width=256, height=192)
    scripted.script = [lambda: services.cancel_task(Task.objects.get(pk=task.pk))]
    run_task(str(task.pk))
    task.refresh_from_db()
    assert task.status == Task.Status.CANCELED and task.error_code == ""
    assert scripted.calls == 1 and not Image.objects.filter(task=task).exists()
    assert files_under(media_root) == []


def test_a_stop_landing_after_the_files_are_written_removes_them(user, scripted, media_root, monkeypatch):
    task = TaskFactory(owner=user, provider="scripted", model="fixed", width=256, height=192)
    original = services.imaging.make_thumbnail

    def stopped_meanwhile(*args, **kwargs):
        Task.objects.get(pk=task.pk).cancel()  # Stop lands while the files are being written
        return original(*args, **kwargs)

    monkeypatch.setattr(services.imaging, "make_thumbnail", stopped_meanwhile)
    run_task(str(task.pk))
    task.refresh_from_db()
    assert task.status == Task.Status.CANCELED
    assert not Image.objects.filter(task=task).exists() and files_under(media_root) == []


def test_a_stop_after_completion_changes_nothing(user, completed_task):
    assert not services.cancel_task(completed_task)
    completed_task.refresh_from_db()
    assert completed_task.status == "completed" and completed_task.images.count() == 2


@pytest.mark.django_db(transaction=True)
def test_stop_and_completion_racing_exactly_one_wins(media_root):
    """Completion (images and the conditional UPDATE in one transaction) against Stop (one
    conditional UPDATE), started together from two threads, twelve times."""
    from .factories import UserFactory

    owner = UserFactory()
    request = GenerationRequest(prompt="race", model="sketch-v1", width=64, height=64)
    outcomes = []
    for _ in range(12):
        task = claimed(TaskFactory(owner=owner, width=64, height=64))
        results = [GeneratedImage(data=draw_sketch(request, 1), seed=1)]
        start = threading.Barrier(2)
        stopped: list[bool] = []

        def complete(task=task, results=results, start=start) -> None:
            start.wait()
            try:
                services.store_images(task, results)
            finally:
                connection.close()

        def stop(task=task, start=start, stopped=stopped) -> None:
            start.wait()
            try:
                stopped.append(services.cancel_task(Task.objects.get(pk=task.pk)))
            finally:
                connection.close()

        threads = [threading.Thread(target=complete), threading.Thread(target=stop)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        final = Task.objects.get(pk=task.pk)
        images = Image.objects.filter(task=final).count()
        if final.status == "completed":
            assert stopped == [False] and images == 1
        else:
            assert final.status == "canceled" and stopped == [True] and images == 0
        outcomes.append(final.status)
    kept = {image.file.name for image in Image.objects.all()} | {image.thumbnail.name for image in Image.objects.all()}
    on_disk = {str(path.relative_to(media_root)) for path in files_under(media_root)}
    assert on_disk == kept  # a Stop that won left no file behind
    assert set(outcomes) <= {"completed", "canceled"}


@pytest.mark.django_db(transaction=True)
def test_stopping_a_webui_task_interrupts_it_and_keeps_nothing(fake_webui, configure_provider, media_root, monkeypatch):
    """The whole path, as a worker runs it: progress and the preview reach the task while the
    WebUI samples; Stop → the worker sees it, sends /sdapi/v1/interrupt, discards the answer."""
    from .factories import UserFactory

    monkeypatch.setattr(Conf, "SYNC", False)  # the worker's threads, as in a cluster
    monkeypatch.setattr(watch, "PROGRESS_SECONDS", 0.05)
    fake_webui.step_seconds = 0.05
    configure_provider("automatic1111", BASE_URL=fake_webui.url, PROGRESS_SECONDS=0.05)
    owner = UserFactory()
    task = TaskFactory(owner=owner, provider="automatic1111", model="default", steps=300, width=64, height=64)

    def work() -> None:
        try:
            run_task(str(task.pk))
        finally:
            connection.close()

    worker = threading.Thread(target=work)
    worker.start()
    wait_for(lambda: Task.objects.get(pk=task.pk).progress > watch.LOW + 2)
    wait_for(lambda: progress.preview(task.pk) is not None)
    rising = Task.objects.get(pk=task.pk).progress
    assert services.cancel_task(Task.objects.get(pk=task.pk))
    worker.join(timeout=20)
    assert not worker.is_alive()

    final = Task.objects.get(pk=task.pk)
    assert final.status == Task.Status.CANCELED and final.error_code == "" and final.progress >= rising
    seen = fake_webui.snapshot()
    assert seen["interrupts"] == [fake_webui.calls[0]["force_task_id"]]
    assert seen["answered"][0]["interrupted"] and seen["answered"][0]["steps"] < 300
    assert not Image.objects.filter(task=final).exists() and files_under(media_root) == []
    assert progress.preview(task.pk) is None  # the preview went with the step


@pytest.mark.django_db(transaction=True)
def test_a_job_submitted_while_the_task_was_stopped_is_canceled_at_the_vendor(settings, monkeypatch):
    from .factories import UserFactory
    from .fakes import ScriptedJobProvider

    settings.EXTRA_PROVIDERS = {"jobs": "tests.fakes.ScriptedJobProvider"}
    ScriptedJobProvider.reset()
    task = claimed(TaskFactory(owner=UserFactory(), provider="jobs", model="job-model"))
    original = ScriptedJobProvider.submit

    def submit_while_stopped(self, request, save):
        Task.objects.get(pk=task.pk).cancel()  # Stop pressed while the vendor accepts the job
        return original(self, request, save)

    monkeypatch.setattr(ScriptedJobProvider, "submit", submit_while_stopped)
    steps.run_step(task)
    assert Task.objects.get(pk=task.pk).status == "canceled"
    assert ScriptedJobProvider.canceled == [{"job_id": "job-1", "request_id": "req-1"}]


# --- what the card, the preview view and the API show -------------------------------------------


def test_a_generating_card_shows_progress_elapsed_estimate_preview_and_stop(auth_client, user):
    past = TaskFactory(owner=user)
    Task.objects.filter(pk=past.pk).update(
        status="completed", started_at=timezone.now() - timedelta(seconds=40), finished_at=timezone.now()
    )
    task = claimed(TaskFactory(owner=user))
    Task.objects.filter(pk=task.pk).update(progress=47, started_at=timezone.now() - timedelta(seconds=75))
    progress.store_preview(task.pk, draw_sketch(request_for(), 3))
    html = auth_client.get(reverse("generator:task_card", args=[task.pk])).content.decode()
    preview_url = reverse("generator:task_preview", args=[task.pk])
    assert f'src="{preview_url}?at=47" width="256" height="192" alt="The picture so far"' in html
    assert 'value="47"' in html and '<span class="task-percent">47%</span>' in html
    assert '<time class="task-elapsed" data-elapsed="75">1:15</time>' in html
    assert "usually about 40 s" in html
    assert ">Stop</button>" in html and reverse("generator:task_cancel", args=[task.pk]) in html


def test_a_waiting_card_says_so_and_offers_cancel(auth_client, user):
    task = TaskFactory(owner=user)
    html = auth_client.get(reverse("generator:task_card", args=[task.pk])).content.decode()
    assert "Waiting for a worker…" in html and ">Cancel</button>" in html
    assert "task-elapsed" not in html and "usually about" not in html and "task-preview" not in html


def test_the_preview_is_for_its_owner_only_and_never_cached(auth_client, other_client, user):
    task = claimed(TaskFactory(owner=user))
    url = reverse("generator:task_preview", args=[task.pk])
    assert auth_client.get(url).status_code == 404  # none yet
    progress.store_preview(task.pk, draw_sketch(request_for(), 3))
    response = auth_client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/webp"
    assert response["Cache-Control"] == "private, no-store" and response.content[8:12] == b"WEBP"
    assert other_client.get(url).status_code == 404
    services.cancel_task(task)
    assert auth_client.get(url).status_code == 404  # only while generating


def test_a_preview_that_is_no_picture_is_not_kept(user):
    task = claimed(TaskFactory(owner=user))
    assert not progress.store_preview(task.pk, b"not a picture")
    assert progress.preview(task.pk) is None


def test_the_estimate_is_the_median_of_recent_completed_tasks_of_that_model(user, django_assert_num_queries):
    now = timezone.now()
    for seconds in (10, 30, 20, 400):
        old = TaskFactory(owner=user, provider="offline", model="sketch-v1")
        Task.objects.filter(pk=old.pk).update(
            status="completed", started_at=now - timedelta(seconds=seconds), finished_at=now
        )
    failed = TaskFactory(owner=user)
    Task.objects.filter(pk=failed.pk).update(status="failed", started_at=now - timedelta(hours=1), finished_at=now)
    with django_assert_num_queries(1):
        assert progress.estimated_seconds("offline", "sketch-v1") == 25.0
    with django_assert_num_queries(0):  # cached
        assert progress.estimated_seconds("offline", "sketch-v1") == 25.0
    assert progress.estimated_seconds("offline", "another-model") is None


def test_generate_answers_with_the_estimate_and_the_task_json_while_it_runs(auth_client, user):
    now = timezone.now()
    old = TaskFactory(owner=user)
    Task.objects.filter(pk=old.pk).update(status="completed", started_at=now - timedelta(seconds=12), finished_at=now)
    response = auth_client.post(
        "/api/v1/generate", {"prompt": "a lantern", "provider": "offline"}, content_type="application/json"
    )
    assert response.status_code == 201 and response.json()["estimated_time"] == 12.0
    running = claimed(TaskFactory(owner=user))
    assert auth_client.get(f"/api/v1/task/{running.pk}").json()["estimated_time"] == 12.0


def test_a_vendor_job_still_queued_says_so_then_that_it_is_generating(auth_client, user, settings):
    from generator.providers.base import JobCheck

    from .fakes import ScriptedJobProvider
    from .test_scheduler import look

    settings.EXTRA_PROVIDERS = {"jobs": "tests.fakes.ScriptedJobProvider"}
    ScriptedJobProvider.reset()
    ScriptedJobProvider.checks = [
        JobCheck(finished=False, progress=20, queued=True),
        JobCheck(finished=False, progress=50),
    ]
    task = TaskFactory(owner=user, provider="jobs", model="job-model")
    steps.run_step(claimed(task))  # submitted
    url = reverse("generator:task_card", args=[task.pk])
    steps.run_step(look(task))
    first = auth_client.get(url).content.decode()
    assert "Waiting in the provider's queue (job submitted)." in first, first
    steps.run_step(look(task))
    html = auth_client.get(url).content.decode()
    assert "Generating at the provider (job submitted)." in html and 'value="47"' in html
    assert ">Stop</button>" in html


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.14, "usually about 0.1 s"),
        (12.4, "usually about 12 s"),
        (89, "usually about 89 s"),
        (150, "usually about 3 minutes"),
        (60 * 60, "usually about 60 minutes"),
    ],
)
def test_the_estimate_reads_in_seconds_then_minutes(user, monkeypatch, seconds, text):
    monkeypatch.setattr(progress, "estimated_seconds", lambda provider, model: seconds)
    assert TaskFactory(owner=user).estimated_text == text


def test_the_api_stops_a_generating_task_and_refuses_a_finished_one(user, completed_task, client, other_user):
    from accounts.tokens import create_token

    token = {"HTTP_AUTHORIZATION": f"Bearer {create_token(user, 'script').plaintext}"}
    running = claimed(TaskFactory(owner=user))
    response = client.post(f"/api/v1/task/{running.pk}/cancel", **token)
    assert response.status_code == 200 and response.json()["status"] == "canceled"
    assert Task.objects.get(pk=running.pk).status == "canceled"
    finished = client.post(f"/api/v1/task/{completed_task.pk}/cancel", **token)
    assert finished.status_code == 409 and finished.json()["error"] == "already_finished"
    theirs = claimed(TaskFactory(owner=other_user))
    assert client.post(f"/api/v1/task/{theirs.pk}/cancel", **token).status_code == 404
    assert Task.objects.get(pk=theirs.pk).status == "processing"
