from __future__ import annotations

import io
import json
from pathlib import Path

from PIL import Image as PILImage

from generator.models import Image, Task
from generator.providers import PermanentProviderError, TransientProviderError
from generator.providers.base import GeneratedImage
from generator.scheduler.inline import run_task
from generator.services import TaskSettings, create_task

from .factories import TaskFactory


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).rglob("*") if p.is_file())


def test_a_task_ends_completed_with_files_then_rows(user, media_root):
    task = TaskFactory(owner=user, num_images=2, seed=100, negative_prompt="fog")
    run_task(str(task.pk))
    task.refresh_from_db()
    assert task.status == Task.Status.COMPLETED
    assert task.progress == 100 and task.attempts == 1
    assert task.started_at and task.finished_at and task.created_at <= task.started_at <= task.finished_at
    images = task.ordered_images
    assert [image.seed for image in images] == [100, 101]
    assert len(files_under(media_root)) == 4  # two originals, two thumbnails
    for image in images:
        assert image.owner_id == user.pk
        original = PILImage.open(image.file.path)
        assert original.format == "PNG" and original.size == (256, 192) == (image.width, image.height)
        assert image.bytes == Path(image.file.path).stat().st_size
        assert f"Seed: {image.seed}, Size: 256x192, Model: sketch-v1" in original.text["parameters"]
        assert "Negative prompt: fog" in original.text["parameters"]
        assert json.loads(original.text["atelier"])["task_id"] == str(task.pk)
        assert PILImage.open(image.thumbnail.path).format == "WEBP"


def test_a_second_delivery_of_the_same_task_does_nothing(user, media_root):
    task = TaskFactory(owner=user)
    run_task(str(task.pk))
    run_task(str(task.pk))
    assert Image.objects.filter(task=task).count() == 1
    assert len(files_under(media_root)) == 2
    task.refresh_from_db()
    assert task.attempts == 1


def test_an_unknown_task_id_is_ignored(db):
    assert run_task("00000000-0000-0000-0000-000000000000") is None


def test_transient_errors_are_retried_with_backoff(user, scripted):
    scripted.script = [TransientProviderError("rate_limited", "The provider is busy.")]
    task = TaskFactory(owner=user, provider="scripted", model="fixed")
    run_task(str(task.pk))
    task.refresh_from_db()
    assert task.status == Task.Status.COMPLETED
    assert task.attempts == 2 and scripted.calls == 2
    assert task.error_code == ""


def test_it_gives_up_after_the_configured_attempts(user, scripted, settings, media_root):
    settings.PROVIDER_MAX_ATTEMPTS = 3
    busy = TransientProviderError("provider_unavailable", "The provider is not answering.", request_id="req-9")
    scripted.script = [busy, busy, busy, busy]
    task = TaskFactory(owner=user, provider="scripted", model="fixed")
    run_task(str(task.pk))
    task.refresh_from_db()
    assert task.status == Task.Status.FAILED
    assert scripted.calls == 3 and task.attempts == 3
    assert task.error_code == "provider_unavailable"
    assert task.error_message == "The provider is not answering."
    assert task.provider_request_id == "req-9"
    assert task.finished_at is not None
    assert files_under(media_root) == []


def test_permanent_errors_fail_at_once_with_a_readable_message(user, scripted, media_root):
    scripted.script = [
        PermanentProviderError("content_rejected", "The provider rejected this prompt as sensitive content.")
    ]
    task = TaskFactory(owner=user, provider="scripted", model="fixed")
    run_task(str(task.pk))
    task.refresh_from_db()
    assert (task.status, task.error_code, task.attempts) == (Task.Status.FAILED, "content_rejected", 1)
    assert task.error_message == "The provider rejected this prompt as sensitive content."
    assert not Image.objects.exists() and files_under(media_root) == []


def test_a_non_image_result_fails_and_stores_nothing(user, scripted, media_root):
    scripted.script = [[GeneratedImage(data=b"<html>error page</html>", seed=1)]]
    task = TaskFactory(owner=user, provider="scripted", model="fixed")
    run_task(str(task.pk))
    task.refresh_from_db()
    assert task.status == Task.Status.FAILED and task.error_code == "invalid_image"
    assert "not a PNG, JPEG or WebP" in task.error_message
    assert files_under(media_root) == []


def test_a_bad_second_image_removes_the_first_ones_files(user, scripted, media_root):
    good = io.BytesIO()
    PILImage.new("RGB", (256, 192)).save(good, "PNG")
    scripted.script = [[GeneratedImage(data=good.getvalue(), seed=1), GeneratedImage(data=b"junk", seed=2)]]
    task = TaskFactory(owner=user, provider="scripted", model="fixed", num_images=2)
    run_task(str(task.pk))
    assert Task.objects.get(pk=task.pk).status == Task.Status.FAILED
    assert files_under(media_root) == [] and not Image.objects.exists()


def test_an_unexpected_error_fails_the_task_without_details(user, scripted, media_root):
    def explode():
        raise RuntimeError("secret internal detail")

    scripted.script = [explode]
    task = TaskFactory(owner=user, provider="scripted", model="fixed")
    run_task(str(task.pk))
    task.refresh_from_db()
    assert task.status == Task.Status.FAILED and task.error_code == "internal_error"
    assert "secret" not in task.error_message


def test_a_task_ended_elsewhere_while_generating_keeps_nothing(user, scripted, media_root):
    task = TaskFactory(owner=user, provider="scripted", model="fixed")

    def ended_meanwhile():
        # e.g. the sweeper decided the worker had died and failed the task
        Task.objects.get(pk=task.pk).mark_failed("worker_lost", "The worker stopped while generating; please retry.")

    scripted.script = [ended_meanwhile]
    run_task(str(task.pk))
    assert Task.objects.get(pk=task.pk).error_code == "worker_lost"
    assert not Image.objects.exists() and files_under(media_root) == []


def test_a_canceled_task_is_never_run(user, scripted):
    task = TaskFactory(owner=user, provider="scripted", model="fixed")
    assert task.cancel()
    run_task(str(task.pk))
    assert scripted.calls == 0
    assert Task.objects.get(pk=task.pk).status == Task.Status.CANCELED


def test_a_provider_turned_off_after_submission_fails_clearly(user, settings):
    task = TaskFactory(owner=user)
    settings.OFFLINE_PROVIDER = False
    run_task(str(task.pk))
    task.refresh_from_db()
    assert task.status == Task.Status.FAILED and task.error_code == "provider_unavailable"


def test_create_task_enqueues_only_after_commit(user, django_capture_on_commit_callbacks):
    settings_ = TaskSettings(prompt="a boat", provider="offline", model="sketch-v1", width=128, height=128)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        task = create_task(user, settings_)
        assert Task.objects.get(pk=task.pk).status == Task.Status.PENDING
    # The worker's wake-up, and the signal to the owner's open pages (generator.live).
    assert len(callbacks) == 2
    callbacks[0]()  # the commit: with sync=True in tests this runs the task inline
    assert Task.objects.get(pk=task.pk).status == Task.Status.COMPLETED
