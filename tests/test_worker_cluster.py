"""The real worker: tasks go through django-q2's ORM broker to a `manage.py qcluster` process."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from django_q.models import OrmQ
from django_q.models import Task as QueuedTask
from django_q.tasks import async_task
from PIL import Image as PILImage

from generator import services
from generator.models import Image, Task
from generator.scheduler.queue import wake
from generator.services import TaskSettings

from .cluster import wait_for_final
from .factories import TaskFactory, UserFactory

pytestmark = pytest.mark.cluster


def _settings(**overrides) -> TaskSettings:
    values = {
        "prompt": "a lighthouse on a cliff at dawn, oil painting",
        "provider": "offline",
        "model": "sketch-v1",
        "width": 256,
        "height": 192,
        "num_images": 2,
        "seed": 1234,
    }
    return TaskSettings(**{**values, **overrides})


def _files_under(root: Path) -> list[Path]:
    return sorted(path for path in Path(root).rglob("*") if path.is_file())


def test_created_task_is_completed_by_the_real_cluster(qcluster, media_root):
    user = UserFactory()

    task = services.create_task(user, _settings())

    task = wait_for_final(task, timeout=30)
    assert task.status == Task.Status.COMPLETED, (task.error_code, task.error_message)
    assert task.progress == 100
    assert task.attempts == 1
    images = task.ordered_images
    assert [image.index for image in images] == [0, 1]
    assert [image.seed for image in images] == [1234, 1235]
    for image in images:
        original = Path(media_root) / image.file.name
        thumbnail = Path(media_root) / image.thumbnail.name
        assert original.is_file() and thumbnail.is_file()
        assert original.stat().st_size == image.bytes
        with PILImage.open(original) as png:
            assert png.format == "PNG"
            assert png.size == (256, 192)
            parameters = png.text["parameters"]
            metadata = json.loads(png.text["atelier"])
        assert parameters.startswith("a lighthouse on a cliff at dawn, oil painting\n")
        assert f"Seed: {image.seed}" in parameters
        assert metadata["task_id"] == str(task.pk)
        assert metadata["image_id"] == str(image.pk)
        with PILImage.open(thumbnail) as webp:
            assert webp.format == "WEBP"
    assert len(_files_under(media_root)) == 4  # two originals, two thumbnails, nothing else

    # Queue messages are permissions, not the work: django-q2 keeps no result row per step,
    # so its table does not grow with every generation.
    assert not QueuedTask.objects.filter(func="generator.jobs.dispatch").exists()


def test_task_is_seen_processing_before_it_completes(start_qcluster):
    start_qcluster(OFFLINE_DELAY_SECONDS=1)
    user = UserFactory()

    task = services.create_task(user, _settings(num_images=1))

    seen: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = Task.objects.values_list("status", flat=True).get(pk=task.pk)
        if not seen or seen[-1] != status:
            seen.append(status)
        if status in ("completed", "failed", "canceled"):
            break
        time.sleep(0.02)
    task = wait_for_final(task, timeout=1)

    assert task.status == Task.Status.COMPLETED, (seen, task.error_message)
    assert "processing" in seen, seen
    assert seen[-1] == "completed"
    assert set(seen) <= {"pending", "processing", "completed"}
    assert task.started_at is not None and task.finished_at is not None
    assert task.created_at <= task.started_at < task.finished_at
    # The provider slept for a second inside the processing window.
    assert task.duration.total_seconds() >= 0.9


def test_many_permissions_for_one_task_make_one_set_of_images(start_qcluster, media_root):
    # A delay keeps the first claim busy while the other messages reach the other worker.
    start_qcluster(OFFLINE_DELAY_SECONDS=0.6)
    task = TaskFactory(num_images=2)  # created without waking anyone

    wake(4)
    # A message queued by an older Atelier names its task; it is a permission like the others.
    async_task("generator.jobs.run_task", str(task.pk), task_name=f"generate-{task.pk}")

    task = wait_for_final(task, timeout=30)
    assert task.status == Task.Status.COMPLETED
    assert task.attempts == 1  # claimed once: the other messages found nothing to run
    assert Image.objects.filter(task=task).count() == 2
    assert sorted(image.index for image in task.ordered_images) == [0, 1]
    assert len(_files_under(media_root)) == 4
    deadline = time.monotonic() + 10
    while OrmQ.objects.exists():  # every message was delivered and used up
        assert time.monotonic() < deadline, "messages left on the broker"
        time.sleep(0.05)
