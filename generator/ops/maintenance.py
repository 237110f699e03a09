"""Operator maintenance: retention cleanup, media pruning and thumbnail rebuilding.

The management commands (`cleanup`, `prune_media`, `rebuild_thumbnails`) and the daily
retention schedule call these functions. Each one takes `dry_run`: a dry run reads exactly
what the real run would act on and changes nothing; the real run reports what it actually did.
Everything goes through the storage API (never the filesystem), so it works unchanged on
S3-compatible storage.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, default_storage
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from audit import retention as audit_retention

from .. import services
from ..lib import imaging
from ..models import (
    ACTIVE_STATUSES,
    FINISHED_STATUSES,
    IDEMPOTENCY_WINDOW,
    IdempotencyKey,
    Image,
    Task,
    thumbnail_upload_to,
)

logger = logging.getLogger(__name__)

MEDIA_PREFIXES = ("images", "thumbs")  # where Image files live; readiness/ probes are elsewhere
BATCH_SIZE = 500  # tasks per deletion transaction (keeps IN lists and locks small)

AGE_RE = re.compile(r"^\s*(\d+)\s*([dhm])\s*$", re.IGNORECASE)
AGE_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def user_named(name: str) -> User:
    """The user with this username; ValueError with a readable message otherwise."""
    User = get_user_model()
    user = User.objects.filter(**{User.USERNAME_FIELD: name}).first()
    if user is None:
        raise ValueError(f"No user named “{name}”.")
    return user


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


# --- generate --wait ----------------------------------------------------------------------


def wait_for_task(task: Task, timeout: float, poll_seconds: float = 0.5) -> bool:
    """Poll the Task row until it is no longer active; False when `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        task.refresh_from_db()
        if not task.is_active:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(poll_seconds, max(0.0, deadline - time.monotonic())))


def stored_locations(name: str, storage: Storage | None = None) -> str:
    """A stored file's name, plus its absolute path when the storage is local."""
    storage = storage or default_storage
    try:
        path = storage.path(name)
    except NotImplementedError:  # remote storage (S3): the name is all there is
        return name
    return f"{name}  {path}" if os.path.isfile(path) else name


# --- cleanup ------------------------------------------------------------------------------


def parse_age(text: str) -> timedelta:
    """Parse an age such as 30d, 12h or 90m into a timedelta; ValueError with a readable message otherwise."""
    match = AGE_RE.match(text or "")
    if not match:
        raise ValueError(
            f"“{text}” is not an age. Use a whole number followed by d (days), h (hours) or m (minutes), e.g. 30d."
        )
    amount, unit = int(match.group(1)), match.group(2).lower()
    if amount < 1:
        raise ValueError("The age must be at least 1 (e.g. 1d); 0 would select every finished task.")
    return timedelta(**{AGE_UNITS[unit]: amount})


def parse_statuses(text: str | Iterable[str] | None) -> tuple[str, ...]:
    """Parse "failed,canceled" into ("failed", "canceled"): finished statuses only, ValueError otherwise."""
    if text is None:
        return tuple(FINISHED_STATUSES)
    names = [part.strip().lower() for part in (text.split(",") if isinstance(text, str) else text)]
    names = [name for name in names if name]
    if not names:
        raise ValueError(f"Name at least one status: {', '.join(FINISHED_STATUSES)}.")
    for name in names:
        if name in ACTIVE_STATUSES:
            raise ValueError(
                f"“{name}” tasks are still active and are never deleted. Choose from: {', '.join(FINISHED_STATUSES)}."
            )
        if name not in FINISHED_STATUSES:
            raise ValueError(f"Unknown status “{name}”. Choose from: {', '.join(FINISHED_STATUSES)}.")
    return tuple(dict.fromkeys(names))


@dataclass
class CleanupReport:
    """What one cleanup deleted (or, with dry_run, would delete)."""

    dry_run: bool = False
    task_ids: list[uuid.UUID] = field(default_factory=list)
    image_ids: list[uuid.UUID] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def summary(self) -> str:
        what = (
            f"{_plural(len(self.task_ids), 'task')} with {_plural(len(self.image_ids), 'image')} "
            f"({_plural(len(self.files), 'file')})"
        )
        if self.dry_run:
            return f"Would delete {what}. Dry run: nothing was changed."
        return f"Deleted {what}."


def cleanup_candidates(
    older_than: timedelta,
    statuses: Iterable[str] = FINISHED_STATUSES,
    owner: User | None = None,
    now: datetime | None = None,
) -> QuerySet[Task]:
    """Finished tasks created before now - older_than, oldest first. Active tasks never match."""
    finished = [status for status in statuses if status not in ACTIVE_STATUSES]
    tasks = Task.objects.filter(status__in=finished, created_at__lt=(now or timezone.now()) - older_than)
    if owner is not None:
        tasks = tasks.filter(owner=owner)
    return tasks.order_by("created_at", "id")


def cleanup_tasks(
    older_than: timedelta,
    statuses: Iterable[str] = FINISHED_STATUSES,
    owner: User | None = None,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
) -> CleanupReport:
    """Delete finished tasks older than `older_than` with their images; files go after each commit."""
    statuses = tuple(statuses)
    candidates = cleanup_candidates(older_than, statuses, owner, now)
    report = CleanupReport(dry_run=dry_run)
    task_ids = list(candidates.values_list("pk", flat=True))
    for start in range(0, len(task_ids), BATCH_SIZE):
        batch = task_ids[start : start + BATCH_SIZE]
        if dry_run:
            _report_tasks(report, candidates.filter(pk__in=batch))
            continue
        with transaction.atomic():
            # Re-read under lock: only what still matches is deleted, and exactly that is reported.
            locked = list(candidates.filter(pk__in=batch).select_for_update().values_list("pk", flat=True))
            doomed = Task.objects.filter(pk__in=locked).order_by("created_at", "id")
            _report_tasks(report, doomed)
            services.delete_tasks(doomed)
    if report.task_ids and not dry_run:
        logger.info("cleanup: %s", report.summary())
    return report


def _report_tasks(report: CleanupReport, tasks: QuerySet[Task]) -> None:
    ids = list(tasks.values_list("pk", flat=True))
    report.task_ids += ids
    images = Image.objects.filter(task_id__in=ids).order_by("created_at", "id")
    for image_id, original, thumbnail in images.values_list("pk", "file", "thumbnail"):
        report.image_ids.append(image_id)
        report.files += [name for name in (original, thumbnail) if name]


# --- retention schedule -------------------------------------------------------------------


def retention_days() -> int:
    return max(0, int(getattr(settings, "RETENTION_DAYS", 0) or 0))


def retention_cleanup() -> str:
    """The daily schedule's entry point: delete finished tasks older than RETENTION_DAYS (and,
    always, Idempotency-Keys past their 24 hours, for people who sent no key since, and audit
    entries older than AUDIT_RETENTION_DAYS)."""
    IdempotencyKey.objects.filter(created_at__lte=timezone.now() - IDEMPOTENCY_WINDOW).delete()
    # The audit log's own retention (AUDIT_RETENTION_DAYS, 0: forever), whatever RETENTION_DAYS says.
    audit_pruned = audit_retention.summary(audit_retention.prune())
    days = retention_days()
    if not days:
        tasks = "Retention cleanup is off (RETENTION_DAYS is 0)."
    else:
        tasks = cleanup_tasks(timedelta(days=days)).summary()
    return f"{tasks} {audit_pruned}".strip()


# --- media --------------------------------------------------------------------------------


def all_images(batch_size: int = 500) -> Iterator[Image]:
    """Every image, oldest first, a page at a time (keyset on created_at, id).

    Pages are read whole, so the caller may update or delete rows as it goes on any database.
    """
    query = Image.objects.order_by("created_at", "id").only("id", "owner_id", "created_at", "file", "thumbnail")
    last: Image | None = None
    while True:
        page = query
        if last is not None:
            page = page.filter(Q(created_at__gt=last.created_at) | Q(created_at=last.created_at, id__gt=last.pk))
        rows = list(page[:batch_size])
        yield from rows
        if len(rows) < batch_size:
            return
        last = rows[-1]


def walk(storage: Storage, top: str) -> Iterator[str]:
    """Every file name under `top`, sorted, through the storage API (listdir, recursively)."""
    try:
        directories, files = storage.listdir(top)
    except (FileNotFoundError, NotADirectoryError):
        return
    for name in sorted(files):
        yield f"{top}/{name}"
    for directory in sorted(directories):
        yield from walk(storage, f"{top}/{directory}")


def orphan_grace() -> timedelta:
    """Files younger than this may belong to a task still writing them (files come before rows)."""
    return timedelta(seconds=settings.TASK_TIMEOUT + getattr(settings, "RECOVERY_GRACE_SECONDS", 60))


@dataclass
class PruneReport:
    """What prune_media found and did (or, with dry_run, would do)."""

    dry_run: bool = False
    fix: bool = False
    orphans: list[str] = field(default_factory=list)  # files with no row: deleted
    too_new: list[str] = field(default_factory=list)  # files with no row yet, left alone
    missing_original: list[uuid.UUID] = field(default_factory=list)  # rows whose original is gone
    missing_thumbnail: list[uuid.UUID] = field(default_factory=list)  # original there, thumbnail gone
    rebuilt: list[uuid.UUID] = field(default_factory=list)  # thumbnails rebuilt (fix)
    rows_deleted: list[uuid.UUID] = field(default_factory=list)  # rows removed (fix)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{'Would delete' if self.dry_run else 'Deleted'} {_plural(len(self.orphans), 'orphan file')}"]
        if self.too_new:
            parts.append(f"left {_plural(len(self.too_new), 'newer file')} without a row alone")
        parts.append(
            f"{_plural(len(self.missing_original), 'image')} missing the original, "
            f"{_plural(len(self.missing_thumbnail), 'image')} missing the thumbnail"
        )
        if self.fix:
            rebuild, delete = ("would rebuild", "would delete") if self.dry_run else ("rebuilt", "deleted")
            parts.append(
                f"{rebuild} {_plural(len(self.rebuilt), 'thumbnail')}, "
                f"{delete} {_plural(len(self.rows_deleted), 'image row')}"
            )
        elif self.missing_original or self.missing_thumbnail:
            parts.append("run with --fix to repair them")
        if self.errors:
            parts.append(_plural(len(self.errors), "error"))
        text = "; ".join(parts) + "."
        return f"{text} Dry run: nothing was changed." if self.dry_run else text


def prune_media(*, fix: bool = False, dry_run: bool = False, storage: Storage | None = None) -> PruneReport:
    """Delete stored files that have no Image row; report (and with fix, repair) rows missing files.

    A missing thumbnail is rebuilt from its original; an image whose original is gone is deleted
    (row and thumbnail). Files newer than orphan_grace() are left alone: a worker writes files
    before it saves their rows.
    """
    storage = storage or default_storage
    report = PruneReport(dry_run=dry_run, fix=fix)
    # List first, then read the rows: a file whose row commits in between is then known.
    listed = [name for prefix in MEDIA_PREFIXES for name in walk(storage, prefix)]
    known: set[str] = set()
    for original, thumbnail in Image.objects.values_list("file", "thumbnail").iterator(chunk_size=2000):
        known.update(name for name in (original, thumbnail) if name)
    cutoff = timezone.now() - orphan_grace()
    for name in listed:
        if name in known:
            continue
        if _modified_before(storage, name, cutoff):
            report.orphans.append(name)
        else:
            report.too_new.append(name)
    if not dry_run:
        for name in report.orphans:
            _delete_file(storage, name, report)

    present = set(listed)
    for image in all_images():
        has_original = _exists(storage, image.file.name, present)
        if not has_original:
            report.missing_original.append(image.pk)
            if fix and (dry_run or services.delete_images(Image.objects.filter(pk=image.pk))):
                report.rows_deleted.append(image.pk)
        elif not _exists(storage, image.thumbnail.name, present):
            report.missing_thumbnail.append(image.pk)
            if fix and (dry_run or _rebuild(storage, image, report)):
                report.rebuilt.append(image.pk)
    if not dry_run and (report.orphans or report.rows_deleted or report.rebuilt):
        logger.info("prune_media: %s", report.summary())
    return report


def _exists(storage: Storage, name: str, present: set[str]) -> bool:
    # The listing answers for most rows; a name not in it is checked directly (it may be newer).
    return bool(name) and (name in present or storage.exists(name))


def _modified_before(storage: Storage, name: str, cutoff: datetime) -> bool:
    try:
        modified = storage.get_modified_time(name)
    except (NotImplementedError, OSError):
        return False  # cannot tell how old it is: leave it alone
    if timezone.is_naive(modified):
        modified = timezone.make_aware(modified)
    return modified < cutoff


def _delete_file(storage: Storage, name: str, report: PruneReport) -> None:
    try:
        storage.delete(name)
    except OSError as error:
        report.errors.append(f"{name}: could not delete ({error.__class__.__name__})")


# --- thumbnails ---------------------------------------------------------------------------


@dataclass
class ThumbnailReport:
    dry_run: bool = False
    rebuilt: list[uuid.UUID] = field(default_factory=list)
    skipped: int = 0  # thumbnail present with --missing-only
    failed: list[tuple[uuid.UUID, str]] = field(default_factory=list)  # unreadable originals

    def summary(self) -> str:
        verb = "Would rebuild" if self.dry_run else "Rebuilt"
        text = f"{verb} {_plural(len(self.rebuilt), 'thumbnail')}"
        text += f", skipped {self.skipped} present, {len(self.failed)} failed."
        return f"{text} Dry run: nothing was changed." if self.dry_run else text


def rebuild_thumbnails(
    *, missing_only: bool = False, dry_run: bool = False, storage: Storage | None = None
) -> ThumbnailReport:
    """Make every image's WebP thumbnail again from its original (THUMBNAIL_SIZE).

    An original that is missing or unreadable is reported in `failed`; the run goes on.
    """
    storage = storage or default_storage
    report = ThumbnailReport(dry_run=dry_run)
    for image in all_images():
        if missing_only and image.thumbnail.name and storage.exists(image.thumbnail.name):
            report.skipped += 1
            continue
        try:
            data = _thumbnail_for(storage, image)
        except Exception as error:  # noqa: BLE001  (Pillow and storages raise many types for bad input)
            report.failed.append((image.pk, _reason(error)))
            logger.warning("thumbnail for image %s not rebuilt: %s", image.pk, _reason(error))
            continue
        if dry_run or _store_thumbnail(storage, image, data):
            report.rebuilt.append(image.pk)
    return report


def _reason(error: Exception) -> str:
    if isinstance(error, FileNotFoundError):
        return "the original file is missing"
    if isinstance(error, OSError) and "cannot identify image" in str(error):
        return "the original is not a readable image"
    return f"the original could not be read ({error.__class__.__name__})"


def _thumbnail_for(storage: Storage, image: Image) -> bytes:
    if not image.file.name:
        raise FileNotFoundError(image.file.name)
    with storage.open(image.file.name, "rb") as original:
        return imaging.make_thumbnail(original.read(), settings.THUMBNAIL_SIZE)


def _rebuild(storage: Storage, image: Image, report: PruneReport) -> bool:
    try:
        data = _thumbnail_for(storage, image)
    except Exception as error:  # noqa: BLE001  (as in rebuild_thumbnails)
        report.errors.append(f"image {image.pk}: thumbnail not rebuilt: {_reason(error)}")
        return False
    return _store_thumbnail(storage, image, data)


def _store_thumbnail(storage: Storage, image: Image, data: bytes) -> bool:
    """Write the thumbnail without a moment where the row points at nothing.

    The canonical name is used when it is free (or the storage overwrites, as S3 does);
    otherwise the storage picks a fresh name, the row moves to it and the old file goes after.
    """
    old = image.thumbnail.name
    new = storage.save(thumbnail_upload_to(image, "thumbnail.webp"), ContentFile(data))
    if new == old:
        return True
    with transaction.atomic():
        moved = Image.objects.filter(pk=image.pk, thumbnail=old).update(thumbnail=new)
        if moved and old:
            transaction.on_commit(partial(services.delete_files, [old]))
    if not moved:  # deleted or changed meanwhile: keep nothing
        services.delete_files([new])
        return False
    image.thumbnail.name = new
    return True
