"""Operator commands: generate, cleanup, prune_media, rebuild_thumbnails (generator.ops.maintenance).

Deletions remove rows at once and files after the commit, so the commands run inside
django_capture_on_commit_callbacks(execute=True) here. `generate --wait` needs real commits
(the task is enqueued on commit and runs inline, Q_CLUSTER sync), so those tests use
transactional_db.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command, load_command_class
from django.utils import timezone
from django_q.models import Schedule
from PIL import Image as PILImage

from generator import jobs
from generator.models import Image, Task
from generator.ops import maintenance, schedules
from generator.providers import PermanentProviderError

from .factories import FinishedTaskFactory, TaskFactory, UserFactory

COMMANDS = ["generate", "cleanup", "prune_media", "rebuild_thumbnails"]
DELETING = ["cleanup", "prune_media", "rebuild_thumbnails"]


def run(*args: str, **options: object) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


def snapshot(media_root: Path) -> dict:
    """Every row the commands could touch and every stored file's content."""
    files = {
        str(path.relative_to(media_root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(Path(media_root).rglob("*"))
        if path.is_file()
    }
    return {
        "tasks": sorted(Task.objects.values_list("pk", "status", "owner_id")),
        "images": sorted(Image.objects.values_list("pk", "file", "thumbnail")),
        "files": files,
    }


def ago(**age: float) -> datetime:
    return timezone.now() - timedelta(**age)


def stored_files(*tasks: Task) -> list[str]:
    return [name for task in tasks for image in task.images.all() for name in (image.file.name, image.thumbnail.name)]


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_explains_itself_with_help(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        call_command(name, "--help")
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert f"{name} [-h]" in text
    help_text = load_command_class("generator", name).help
    assert help_text.split(".")[0] in " ".join(text.split())
    if name in DELETING:
        assert "--dry-run" in text


# --- cleanup ------------------------------------------------------------------------------


@pytest.fixture
def aged(db, user, other_user) -> dict[str, Task]:
    """Old finished tasks of two people, plus a recent one and an old active one."""
    tasks = {
        "completed": FinishedTaskFactory(owner=user, num_images=2, created_at=ago(days=40)),
        "failed": FinishedTaskFactory(owner=user, status=Task.Status.FAILED, created_at=ago(days=40)),
        "canceled": FinishedTaskFactory(owner=user, status=Task.Status.CANCELED, created_at=ago(days=40)),
        "recent": FinishedTaskFactory(owner=user, created_at=ago(days=2)),
        "pending": TaskFactory(owner=user, status=Task.Status.PENDING, created_at=ago(days=90)),
        "processing": TaskFactory(owner=user, status=Task.Status.PROCESSING, created_at=ago(days=90)),
        "others": FinishedTaskFactory(owner=other_user, created_at=ago(days=40)),
    }
    # Their files are really stored: the checks that cleanup removed them cannot pass vacuously.
    assert all(default_storage.exists(name) for name in stored_files(*tasks.values()))
    return tasks


def test_cleanup_dry_run_changes_nothing_and_reports_what_the_real_run_deletes(
    aged, media_root, django_capture_on_commit_callbacks
):
    before = snapshot(media_root)
    with django_capture_on_commit_callbacks(execute=True):
        dry = run("cleanup", "--older-than", "30d", "--dry-run", verbosity=2)
    assert snapshot(media_root) == before
    assert dry.splitlines()[-1] == "Would delete 4 tasks with 3 images (6 files). Dry run: nothing was changed."

    with django_capture_on_commit_callbacks(execute=True):
        real = run("cleanup", "--older-than", "30d", verbosity=2)
    assert real.splitlines()[-1] == "Deleted 4 tasks with 3 images (6 files)."
    doomed = [aged[key] for key in ("completed", "failed", "canceled", "others")]
    reported = [line.split()[0] for line in dry.splitlines()[:-1]]
    assert reported == [line.split()[0] for line in real.splitlines()[:-1]]
    assert sorted(reported) == sorted(str(task.pk) for task in doomed)

    assert sorted(Task.objects.values_list("pk", flat=True)) == sorted(
        aged[key].pk for key in ("recent", "pending", "processing")
    )
    for name in stored_files(aged["completed"], aged["others"]):
        assert not default_storage.exists(name)
    for name in stored_files(aged["recent"]):
        assert default_storage.exists(name)


def test_cleanup_report_lists_exactly_what_it_deletes(aged, django_capture_on_commit_callbacks):
    oldest_first = list(maintenance.cleanup_candidates(timedelta(days=30)).values_list("pk", flat=True))
    dry = maintenance.cleanup_tasks(timedelta(days=30), dry_run=True)
    files = stored_files(aged["completed"], aged["others"])
    with django_capture_on_commit_callbacks(execute=True):
        real = maintenance.cleanup_tasks(timedelta(days=30))
    assert (dry.task_ids, dry.image_ids, dry.files) == (real.task_ids, real.image_ids, real.files)
    assert sorted(real.files) == sorted(files)
    assert real.task_ids == oldest_first
    assert maintenance.cleanup_tasks(timedelta(days=30)).task_ids == []


def test_cleanup_is_scoped_by_status_and_user(aged, user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        out = run("cleanup", "--older-than", "30d", "--status", "failed, canceled", "--user", user.username)
    assert out.strip() == "Deleted 2 tasks with 0 images (0 files)."
    assert not Task.objects.filter(pk__in=[aged["failed"].pk, aged["canceled"].pk]).exists()
    assert Task.objects.filter(pk__in=[aged["completed"].pk, aged["others"].pk]).count() == 2

    with django_capture_on_commit_callbacks(execute=True):
        out = run("cleanup", "--older-than", "30d", "--user", user.username)
    assert out.strip() == "Deleted 1 task with 2 images (4 files)."
    assert Task.objects.filter(pk=aged["others"].pk).exists()


def test_cleanup_ages_in_hours_and_minutes(user, django_capture_on_commit_callbacks):
    old = FinishedTaskFactory(owner=user, status=Task.Status.FAILED, created_at=ago(hours=3))
    FinishedTaskFactory(owner=user, status=Task.Status.FAILED, created_at=ago(minutes=5))
    assert run("cleanup", "--older-than", "4h", "--dry-run").startswith("Would delete 0 tasks")
    with django_capture_on_commit_callbacks(execute=True):
        assert run("cleanup", "--older-than", "90m").strip() == "Deleted 1 task with 0 images (0 files)."
    assert not Task.objects.filter(pk=old.pk).exists() and Task.objects.count() == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--older-than", "30"], "“30” is not an age"),
        (["--older-than", "30w"], "d (days), h (hours) or m (minutes)"),
        (["--older-than", "0d"], "at least 1"),
        (["--older-than", "30d", "--status", "pending"], "“pending” tasks are still active and are never deleted"),
        (["--older-than", "30d", "--status", "processing,failed"], "never deleted"),
        (
            ["--older-than", "30d", "--status", "done"],
            "Unknown status “done”. Choose from: completed, failed, canceled",
        ),
        (["--older-than", "30d", "--status", ","], "Name at least one status"),
        (["--older-than", "30d", "--user", "nobody"], "No user named “nobody”"),
        ([], "--older-than"),
    ],
)
def test_cleanup_refuses_bad_arguments_clearly_and_changes_nothing(aged, media_root, args, message):
    before = snapshot(media_root)
    with pytest.raises(CommandError, match=re.escape(message)):
        run("cleanup", *args)
    assert snapshot(media_root) == before


# --- retention schedule -------------------------------------------------------------------


def retention_rows():
    return Schedule.objects.filter(name=schedules.RETENTION_SCHEDULE_NAME)


def test_the_retention_schedule_exists_only_while_retention_days_is_set(db, settings):
    retention = schedules.RETENTION_SCHEDULE_NAME
    settings.RETENTION_DAYS = 0
    assert retention not in schedules.install_schedules()
    assert not retention_rows().exists()

    settings.RETENTION_DAYS = 30
    assert schedules.install_schedules()[retention] is True
    assert schedules.install_schedules()[retention] is False  # idempotent
    schedule = retention_rows().get()
    assert schedule.func == "generator.jobs.retention_cleanup"
    assert schedule.schedule_type == Schedule.DAILY and schedule.repeats == -1

    Schedule.objects.create(name=retention, func="x", schedule_type=Schedule.ONCE)
    assert schedules.install_schedules()[retention] is False
    assert retention_rows().count() == 1 and retention_rows().get().func == schedules.RETENTION_SCHEDULE_FUNC

    settings.RETENTION_DAYS = 0
    assert retention not in schedules.install_schedules()
    assert not retention_rows().exists()
    assert Schedule.objects.filter(name="atelier-recover-tasks").count() <= 1  # the sweeper is not touched


def test_the_retention_job_deletes_finished_tasks_older_than_retention_days(
    user, settings, django_capture_on_commit_callbacks
):
    old = FinishedTaskFactory(owner=user, created_at=ago(days=8))
    recent = FinishedTaskFactory(owner=user, created_at=ago(days=6))
    active = TaskFactory(owner=user, status=Task.Status.PENDING, created_at=ago(days=100))
    settings.RETENTION_DAYS = 0
    assert jobs.retention_cleanup() == "Retention cleanup is off (RETENTION_DAYS is 0)."
    assert Task.objects.count() == 3

    settings.RETENTION_DAYS = 7
    names = stored_files(old)
    with django_capture_on_commit_callbacks(execute=True):
        assert jobs.retention_cleanup() == "Deleted 1 task with 1 image (2 files)."
    assert sorted(Task.objects.values_list("pk", flat=True)) == sorted([recent.pk, active.pk])
    assert not any(default_storage.exists(name) for name in names)


# --- generate -----------------------------------------------------------------------------


def test_generate_creates_a_pending_task_as_that_user(user):
    out = run(
        "generate", "a red fox in snow", "--user", user.username,
        "--provider", "offline", "--size", "512X512", "--count", "2", "--seed", "42", "--negative", "blur",
    )  # fmt: skip
    task = Task.objects.get()  # on_commit never fires inside the test transaction: it stays pending
    assert out.strip() == f"Created task {task.pk} for {user.username}: offline/sketch-v1 512x512 × 2; it is pending."
    assert (task.owner, task.prompt, task.negative_prompt) == (user, "a red fox in snow", "blur")
    assert (task.width, task.height, task.num_images, task.seed) == (512, 512, 2, 42)


def test_generate_without_a_seed_asks_for_a_random_one(user):
    run("generate", "a red fox", "--user", user.username)
    assert Task.objects.get().seed is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["   "], "PROMPT: Describe the picture you want."),
        (["fox", "--count", "9"], "--count: Choose between 1 and 4 images."),
        (["fox", "--count", "many"], "--count: Enter a whole number."),
        (["fox", "--provider", "nope"], "--provider: Unknown provider “nope”. Choose one of: offline"),
        (["fox", "--model", "nope"], "--model: .* has no model “nope”"),
        (["fox", "--size", "big"], "--size: “big” is not WIDTHxHEIGHT"),
        (["fox", "--seed", "abc"], "--seed: Enter a whole number for the seed"),
        (["fox", "--seed", "-5"], "--seed: The seed must be between 0 and"),
    ],
)
def test_generate_refuses_bad_input_per_option_and_writes_nothing(user, args, message):
    with pytest.raises(CommandError, match=f"Invalid generation settings:\n(.*\n)*  {message}"):
        run("generate", *args, "--user", user.username)
    assert not Task.objects.exists()


def test_generate_refuses_an_unknown_or_deactivated_user(db):
    with pytest.raises(CommandError, match="No user named “ghost”."):
        run("generate", "fox", "--user", "ghost")
    UserFactory(username="gone", is_active=False)
    with pytest.raises(CommandError, match="The account “gone” is deactivated."):
        run("generate", "fox", "--user", "gone")
    assert not Task.objects.exists()


def test_generate_respects_the_queued_task_cap(user, settings):
    settings.MAX_QUEUED_TASKS_PER_USER = 1
    TaskFactory(owner=user)  # pending
    with pytest.raises(CommandError, match="You already have 1 task waiting to run"):
        run("generate", "fox", "--user", user.username)
    assert Task.objects.count() == 1


def test_generate_wait_gives_up_after_the_timeout_and_says_the_task_keeps_running(user):
    started = time.monotonic()
    with pytest.raises(CommandError, match=r"is still pending after 0.3 s; it keeps running"):
        run("generate", "fox", "--user", user.username, "--wait", "--timeout", "0.3")
    assert time.monotonic() - started < 5


def test_generate_wait_prints_the_stored_images(transactional_db, media_root):
    user = UserFactory()
    out = run("generate", "a lighthouse", "--user", user.username, "--count", "2", "--size", "256x256", "--wait")
    task = Task.objects.get()
    assert task.status == Task.Status.COMPLETED and task.owner == user
    lines = out.splitlines()
    assert lines[-1] == f"Task {task.pk} completed with 2 image(s)."
    assert len(lines) == 3
    for line, image in zip(lines[:2], task.ordered_images, strict=True):
        name, path = line.split()
        assert name == image.file.name and Path(path) == Path(media_root) / name
        assert PILImage.open(path).size == (256, 256)


def test_generate_wait_reports_a_provider_failure_and_fails(transactional_db, scripted):
    user = UserFactory()
    scripted.script = [PermanentProviderError("content_rejected", "The provider rejected this prompt.")]
    with pytest.raises(CommandError) as error:
        run("generate", "fox", "--user", user.username, "--provider", "scripted", "--size", "256x192", "--wait")
    task = Task.objects.get()
    assert str(error.value) == f"Task {task.pk} failed (content_rejected): The provider rejected this prompt."
    assert task.status == Task.Status.FAILED and not task.images.exists()


def test_generate_wait_reports_an_unreachable_provider(transactional_db, settings, configure_provider):
    settings.PROVIDER_MAX_ATTEMPTS = 1
    configure_provider("automatic1111", BASE_URL="http://127.0.0.1:9", MODELS=["sd"], TIMEOUT_SECONDS=2.0)
    user = UserFactory()
    with pytest.raises(CommandError, match=r"failed \(connection_error\): "):
        run("generate", "fox", "--user", user.username, "--provider", "automatic1111", "--size", "512x512", "--wait")


# --- prune_media --------------------------------------------------------------------------


def age_file(name: str, days: int = 2) -> None:
    old = time.time() - days * 86400
    os.utime(default_storage.path(name), (old, old))


@pytest.fixture
def damaged(completed_task, media_root, user) -> dict:
    """An orphan (old), a fresh file without a row, a readiness probe, one image without its
    thumbnail and one without its original."""
    first, second = completed_task.ordered_images
    orphan = default_storage.save(f"images/{user.pk}/2020/01/{uuid.uuid4()}.png", ContentFile(b"stray"))
    orphan_thumb = default_storage.save(f"thumbs/{user.pk}/{uuid.uuid4()}.webp", ContentFile(b"stray"))
    fresh = default_storage.save(f"images/{user.pk}/{uuid.uuid4()}.png", ContentFile(b"being written"))
    probe = default_storage.save("readiness/probe.txt", ContentFile(b"ready"))
    for name in (orphan, orphan_thumb, probe):
        age_file(name)
    default_storage.delete(first.thumbnail.name)
    default_storage.delete(second.file.name)
    return {
        "orphans": sorted([orphan, orphan_thumb]),
        "fresh": fresh,
        "probe": probe,
        "no_thumbnail": first,
        "no_original": second,
    }


def test_prune_media_dry_run_changes_nothing_and_matches_the_real_run(damaged, media_root):
    before = snapshot(media_root)
    dry = maintenance.prune_media(dry_run=True)
    assert snapshot(media_root) == before
    assert sorted(dry.orphans) == damaged["orphans"]
    assert dry.too_new == [damaged["fresh"]]
    assert dry.missing_thumbnail == [damaged["no_thumbnail"].pk]
    assert dry.missing_original == [damaged["no_original"].pk]
    assert run("prune_media", "--dry-run").strip() == (
        "Would delete 2 orphan files; left 1 newer file without a row alone; 1 image missing the original, "
        "1 image missing the thumbnail; run with --fix to repair them. Dry run: nothing was changed."
    )
    assert snapshot(media_root) == before

    out = run("prune_media", verbosity=2)
    assert out.splitlines()[-1] == (
        "Deleted 2 orphan files; left 1 newer file without a row alone; 1 image missing the original, "
        "1 image missing the thumbnail; run with --fix to repair them."
    )
    assert sorted(line.split()[-1] for line in out.splitlines() if line.startswith("orphan file")) == dry.orphans
    assert not any(default_storage.exists(name) for name in damaged["orphans"])
    assert default_storage.exists(damaged["fresh"]) and default_storage.exists(damaged["probe"])
    assert before["images"] == snapshot(media_root)["images"]  # without --fix rows are only reported


def test_prune_media_fix_rebuilds_thumbnails_and_removes_images_without_originals(
    damaged, media_root, django_capture_on_commit_callbacks
):
    no_thumbnail, no_original = damaged["no_thumbnail"], damaged["no_original"]
    before = snapshot(media_root)
    dry = maintenance.prune_media(fix=True, dry_run=True)
    assert snapshot(media_root) == before
    assert run("prune_media", "--fix", "--dry-run").strip() == (
        "Would delete 2 orphan files; left 1 newer file without a row alone; 1 image missing the original, "
        "1 image missing the thumbnail; would rebuild 1 thumbnail, would delete 1 image row. "
        "Dry run: nothing was changed."
    )
    with django_capture_on_commit_callbacks(execute=True):
        real = maintenance.prune_media(fix=True)
    assert (real.orphans, real.rebuilt, real.rows_deleted) == (dry.orphans, dry.rebuilt, dry.rows_deleted)
    assert real.rebuilt == [no_thumbnail.pk] and real.rows_deleted == [no_original.pk]
    assert real.summary() == (
        "Deleted 2 orphan files; left 1 newer file without a row alone; 1 image missing the original, "
        "1 image missing the thumbnail; rebuilt 1 thumbnail, deleted 1 image row."
    )

    no_thumbnail.refresh_from_db()
    with default_storage.open(no_thumbnail.thumbnail.name) as thumbnail:
        assert PILImage.open(thumbnail).format == "WEBP"
    assert not Image.objects.filter(pk=no_original.pk).exists()
    assert not default_storage.exists(no_original.thumbnail.name)
    # Nothing left to do, and a second run says so.
    assert run("prune_media", "--fix").strip() == (
        "Deleted 0 orphan files; left 1 newer file without a row alone; 0 images missing the original, "
        "0 images missing the thumbnail; rebuilt 0 thumbnails, deleted 0 image rows."
    )


def test_prune_media_on_an_empty_storage_reports_nothing(db):
    assert run("prune_media").strip() == (
        "Deleted 0 orphan files; 0 images missing the original, 0 images missing the thumbnail."
    )


# --- rebuild_thumbnails -------------------------------------------------------------------


def test_rebuild_thumbnails_missing_only_restores_a_deleted_thumbnail(completed_task, media_root):
    first, second = completed_task.ordered_images
    default_storage.delete(first.thumbnail.name)
    before = snapshot(media_root)
    assert run("rebuild_thumbnails", "--missing-only", "--dry-run").strip() == (
        "Would rebuild 1 thumbnail, skipped 1 present, 0 failed. Dry run: nothing was changed."
    )
    assert snapshot(media_root) == before

    assert run("rebuild_thumbnails", "--missing-only").strip() == "Rebuilt 1 thumbnail, skipped 1 present, 0 failed."
    first.refresh_from_db()
    assert default_storage.exists(first.thumbnail.name)
    with default_storage.open(first.thumbnail.name) as thumbnail:
        assert PILImage.open(thumbnail).format == "WEBP"
    after = snapshot(media_root)
    assert after["files"][second.thumbnail.name] == before["files"][second.thumbnail.name]  # untouched


def test_rebuild_thumbnails_remakes_all_at_the_new_size_and_reports_unreadable_originals(
    completed_task, media_root, settings, django_capture_on_commit_callbacks
):
    settings.THUMBNAIL_SIZE = 64
    first, second = completed_task.ordered_images
    with default_storage.open(second.file.name, "wb") as original:
        original.write(b"not an image at all")
    before = snapshot(media_root)
    dry = maintenance.rebuild_thumbnails(dry_run=True)
    assert snapshot(media_root) == before
    assert dry.rebuilt == [first.pk] and [image_id for image_id, _ in dry.failed] == [second.pk]

    err = io.StringIO()
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("rebuild_thumbnails", stdout=out, stderr=err)
    assert out.getvalue().strip() == "Rebuilt 1 thumbnail, skipped 0 present, 1 failed."
    assert err.getvalue().strip() == f"image {second.pk}: the original is not a readable image"

    first.refresh_from_db()
    with default_storage.open(first.thumbnail.name) as thumbnail:
        assert max(PILImage.open(thumbnail).size) == 64
    second.refresh_from_db()
    assert second.thumbnail.name == before["images"][[row[0] for row in before["images"]].index(second.pk)][2]
    # One thumbnail per image: the old file went when the row moved to the new one.
    assert len(snapshot(media_root)["files"]) == len(before["files"])
    assert run("prune_media", "--dry-run").startswith("Would delete 0 orphan files; 0 images missing")


def test_all_images_pages_through_every_image_once_in_a_stable_order(user):
    FinishedTaskFactory.create_batch(3, owner=user, num_images=2)
    expected = list(Image.objects.order_by("created_at", "id").values_list("pk", flat=True))
    assert [image.pk for image in maintenance.all_images(batch_size=2)] == expected
    assert [image.pk for image in maintenance.all_images(batch_size=6)] == expected


# --- any storage: only the storage API is used --------------------------------------------


@pytest.fixture(params=["memory", pytest.param("s3", marks=pytest.mark.s3)])
def remote_storage(request, settings):
    """The default storage swapped for one without local paths: in memory, or an S3 bucket."""
    if request.param == "memory":
        backend = {"BACKEND": "django.core.files.storage.InMemoryStorage"}
    else:
        import boto3

        endpoint = request.getfixturevalue("s3_endpoint")
        keys = {"access_key": "atelier-test", "secret_key": "atelier-test-secret"}
        bucket = f"atelier-{uuid.uuid4().hex[:12]}"
        boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1",
            aws_access_key_id=keys["access_key"], aws_secret_access_key=keys["secret_key"],
        ).create_bucket(Bucket=bucket)  # fmt: skip
        backend = {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {"bucket_name": bucket, "endpoint_url": endpoint, "region_name": "us-east-1",
                        "default_acl": None, "file_overwrite": False, **keys},
        }  # fmt: skip
    settings.STORAGES = {**settings.STORAGES, "default": backend}
    return default_storage


def test_prune_and_rebuild_work_through_the_storage_api_alone(
    remote_storage, user, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(maintenance, "orphan_grace", lambda: timedelta(seconds=-60))  # every file is old
    task = FinishedTaskFactory(owner=user, num_images=3)
    first, second, third = task.ordered_images
    orphan = remote_storage.save(f"thumbs/{user.pk}/{uuid.uuid4()}.webp", ContentFile(b"stray"))
    probe = remote_storage.save("readiness/probe.txt", ContentFile(b"ready"))
    remote_storage.delete(first.thumbnail.name)
    remote_storage.delete(second.file.name)

    dry = maintenance.prune_media(fix=True, dry_run=True)
    assert remote_storage.exists(orphan) and Image.objects.count() == 3
    with django_capture_on_commit_callbacks(execute=True):
        real = maintenance.prune_media(fix=True)
    assert real.orphans == dry.orphans == [orphan]
    assert real.rebuilt == dry.rebuilt == [first.pk]
    assert real.rows_deleted == dry.rows_deleted == [second.pk]
    assert not remote_storage.exists(orphan) and remote_storage.exists(probe)
    assert not remote_storage.exists(second.thumbnail.name)

    with django_capture_on_commit_callbacks(execute=True):
        rebuilt = maintenance.rebuild_thumbnails()
    assert rebuilt.rebuilt == [first.pk, third.pk] and not rebuilt.failed
    for image in Image.objects.all():
        with remote_storage.open(image.thumbnail.name) as thumbnail:
            assert PILImage.open(thumbnail).format == "WEBP"
    clean = maintenance.prune_media(dry_run=True)
    assert (clean.orphans, clean.missing_original, clean.missing_thumbnail) == ([], [], [])
    assert maintenance.stored_locations(first.file.name) == first.file.name  # no local path to show
