"""Orchestration: creating, running, retrying and deleting tasks; storing and deleting images.

Views, the API, the admin, jobs and management commands all call these functions; each of
these behaviours is written here once. Cancelling is a Task verb (Task.cancel).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Protocol

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django_q.tasks import async_task

from prompts.models import VariantSet
from usage import prices, quotas

from . import live, tags
from .lib import imaging
from .models import CLAIMABLE_STATUSES, IDEMPOTENCY_WINDOW, IdempotencyKey, Image, Tag, Task
from .providers import GeneratedImage, PermanentProviderError, get_provider
from .reasons import Reason
from .scheduler.queue import wake_unless_queued

logger = logging.getLogger(__name__)

MESSAGES = {
    "provider_unavailable": _("This provider is no longer configured. Pick another one and try again."),
    "invalid_image": _("The provider returned an image Atelier could not read."),
    "internal_error": _("Something went wrong while generating. Please try again."),
    "timeout": _("Generation took longer than the time limit and was stopped. Please try again."),
}
CANCEL_PROVIDER_JOB = "generator.jobs.cancel_provider_job"


class TooManyQueuedTasks(Exception):
    """The person already has MAX_QUEUED_TASKS_PER_USER tasks waiting to run, or (a variant
    set: `asked` tasks at once) fewer free places than the submission needs (`room`)."""

    def __init__(self, limit: int, *, asked: int = 1, room: int = 0) -> None:
        self.limit = limit
        self.asked = asked
        self.room = room
        super().__init__(limit)

    def __str__(self) -> str:
        """The message for the person, in the active language (read when the answer is made)."""
        if self.asked > 1 and self.room > 0:
            return ngettext(
                "These %(asked)s variants would be %(asked)s tasks waiting to run, but there is room for only "
                "%(room)s more (at most %(limit)s wait at once). Choose fewer variants, or wait for a task "
                "to start, then try again.",
                "These %(asked)s variants would be %(asked)s tasks waiting to run, but there is room for only "
                "%(room)s more (at most %(limit)s wait at once). Choose fewer variants, or wait for tasks "
                "to start, then try again.",
                self.room,
            ) % {"asked": self.asked, "room": self.room, "limit": self.limit}
        return ngettext(
            "You already have %(count)s task waiting to run. Wait for one to start, or cancel one, then try again.",
            "You already have %(count)s tasks waiting to run. Wait for one to start, or cancel one, then try again.",
            self.limit,
        ) % {"count": self.limit}


class TaskNotRetryable(Exception):
    """Only failed or canceled tasks can be retried (Task.is_retryable)."""


@dataclass(frozen=True)
class TaskSettings:
    """Validated generation settings, as the form's cleaned_data provides them."""

    prompt: str
    provider: str
    model: str
    width: int
    height: int
    num_images: int = 1
    negative_prompt: str = ""
    steps: int | None = None
    guidance_scale: float | None = None
    seed: int | None = None
    # Not a setting: the published image they were taken from ("Use these settings"), if any.
    from_publication_id: uuid.UUID | None = None
    # Prompt assistance: the prompt as typed when the helper or a preset changed it, the preset
    # applied (and its name), the variant set this task is one of.
    original_prompt: str = ""
    preset_id: int | None = None
    preset_name: str = ""
    variant_set_id: int | None = None


class Gate(Protocol):
    """A limit create_task applies under the owner's lock: `check` may raise to refuse the
    submission of `tasks` tasks; `count` runs once they are made (limits.GenerationRate)."""

    def check(self, tasks: int = 1) -> None: ...
    def count(self, tasks: int = 1) -> None: ...


@dataclass(frozen=True)
class Idempotency:
    """An Idempotency-Key and the fingerprint of the request that carried it."""

    key: str
    fingerprint: str


class IdempotencyKeyReused(Exception):
    """The person used this Idempotency-Key within the window for a different request."""


def replayed_task(owner: User, idempotency: Idempotency) -> Task | None:
    """The task this person's current Idempotency-Key made, or None (not sent within
    IDEMPOTENCY_WINDOW). Raises IdempotencyKeyReused when it came with another request."""
    existing = (
        IdempotencyKey.objects.select_related("task")
        .filter(owner=owner, key=idempotency.key, created_at__gt=timezone.now() - IDEMPOTENCY_WINDOW)
        .first()
    )
    if existing is None:
        return None
    if existing.fingerprint != idempotency.fingerprint:
        raise IdempotencyKeyReused(idempotency.key)
    return existing.task


def create_task(
    owner: User, task_settings: TaskSettings, *, rate: Gate | None = None, source: str = Task.Source.WEB
) -> Task:
    """Create a pending task and wake a worker once the transaction commits.

    Raises TooManyQueuedTasks when the owner already has the allowed number of tasks waiting
    (how many run at once is the scheduler's fair share), usage.quotas.QuotaExceeded past a
    quota, and whatever `rate.check()` raises (limits.RateExceeded); `rate.count()` counts
    only a task really made. `source` says where the submission came from (Task.Source). The checks and the
    insert share one transaction, serialised per owner (a row lock on PostgreSQL; SQLite's
    IMMEDIATE transactions serialise all writers), so concurrent submissions cannot overshoot.
    """
    task, _created = create_task_once(owner, task_settings, rate=rate, source=source)
    return task


def create_task_once(
    owner: User,
    task_settings: TaskSettings,
    *,
    rate: Gate | None = None,
    idempotency: Idempotency | None = None,
    source: str = Task.Source.WEB,
) -> tuple[Task, bool]:
    """create_task, and with an Idempotency-Key: the task that key made within
    IDEMPOTENCY_WINDOW, unchanged and not counted again (False: not created now).

    Raises IdempotencyKeyReused for a current key sent with a different request. An expired
    key is reusable. The unique (owner, key) constraint backs the per-owner lock: a request
    that loses a race for the key answers with the winner's task.
    """
    try:
        return _create_task(owner, task_settings, rate, idempotency, source)
    except quotas.QuotaExceeded as refused:
        # Recorded once the refused transaction is rolled back, which would take the row with it.
        quotas.record_refusal(owner, refused)
        raise
    except IntegrityError:
        if idempotency is None:
            raise
        # Another request made a task with this key between our look and our insert.
        existing = IdempotencyKey.objects.select_related("task").filter(owner=owner, key=idempotency.key).first()
        if existing is None:
            raise
        if existing.fingerprint != idempotency.fingerprint:
            raise IdempotencyKeyReused(idempotency.key) from None
        return existing.task, False


def _create_task(
    owner: User, task_settings: TaskSettings, rate: Gate | None, idempotency: Idempotency | None, source: str
) -> tuple[Task, bool]:
    with transaction.atomic():
        _lock_owner(owner)
        now = timezone.now()
        if idempotency is not None:
            keys = IdempotencyKey.objects.filter(owner=owner)
            keys.filter(created_at__lte=now - IDEMPOTENCY_WINDOW).delete()  # expired: reusable
            existing = keys.select_related("task").filter(key=idempotency.key).first()
            if existing is not None:
                if existing.fingerprint != idempotency.fingerprint:
                    raise IdempotencyKeyReused(idempotency.key)
                return existing.task, False
        _admit(owner, [task_settings], rate)
        task = Task.objects.create(owner=owner, source=source, **task_settings.__dict__)
        if idempotency is not None:
            IdempotencyKey.objects.create(
                owner=owner, key=idempotency.key, fingerprint=idempotency.fingerprint, task=task, created_at=now
            )
        _made(owner, 1, rate)
    _log_created(task)
    return task, True


def create_variant_set(
    owner: User,
    settings_list: Sequence[TaskSettings],
    *,
    mode: str,
    prompt: str,
    rate: Gate | None = None,
    source: str = Task.Source.WEB,
) -> VariantSet:
    """Make a variant set: one sibling task for each of `settings_list` (VariantSet.MIN_SIZE to
    MAX_SIZE of them), `prompt` being the idea they share.

    Whole or not at all: the set and all its tasks are made in one transaction under the
    owner's lock, after the cap on waiting tasks is checked for all of them, the rate for all
    of them and the quotas for their sum. Raises what create_task raises (TooManyQueuedTasks,
    limits.RateExceeded, usage.quotas.QuotaExceeded), and then nothing is made.
    """
    if not VariantSet.MIN_SIZE <= len(settings_list) <= VariantSet.MAX_SIZE:
        raise ValueError(f"a variant set has {VariantSet.MIN_SIZE} to {VariantSet.MAX_SIZE} tasks")
    try:
        with transaction.atomic():
            _lock_owner(owner)
            _admit(owner, settings_list, rate)
            variant_set = VariantSet.objects.create(owner=owner, mode=mode, prompt=prompt)
            tasks = [
                Task.objects.create(
                    owner=owner, source=source, **replace(wanted, variant_set_id=variant_set.pk).__dict__
                )
                for wanted in settings_list
            ]
            _made(owner, len(tasks), rate)
    except quotas.QuotaExceeded as refused:
        quotas.record_refusal(owner, refused)  # after the rollback, which would take the row with it
        raise
    for task in tasks:
        _log_created(task)
    logger.info("variant set %s created mode=%s tasks=%s", variant_set.pk, mode, len(tasks))
    return variant_set


def _lock_owner(owner: User) -> None:
    """Serialise this person's submissions: a row lock on PostgreSQL; SQLite's IMMEDIATE
    transactions serialise all writers."""
    get_user_model().objects.select_for_update().filter(pk=owner.pk).first()


def _admit(owner: User, wanted: Sequence[TaskSettings], rate: Gate | None) -> None:
    """Under the owner's lock: refuse a submission of these tasks (raise) when they would go
    past the rate, the cap on waiting tasks or a quota."""
    if rate is not None:
        rate.check(len(wanted))
    limit = settings.MAX_QUEUED_TASKS_PER_USER
    waiting = Task.objects.filter(owner=owner, status__in=CLAIMABLE_STATUSES).count()
    if waiting + len(wanted) > limit:
        raise TooManyQueuedTasks(limit, asked=len(wanted), room=max(limit - waiting, 0))
    quotas.check_all(owner, wanted)


def _made(owner: User, count: int, rate: Gate | None) -> None:
    """Tasks were made: count them against the rate, wake a worker and the owner's pages once
    the transaction commits."""
    if rate is not None:
        rate.count(count)
    transaction.on_commit(wake_unless_queued)
    live.task_changed(owner.pk)


def _log_created(task: Task) -> None:
    if settings.LOG_PROMPTS:
        logger.info("task %s created provider=%s model=%s prompt=%r", task.pk, task.provider, task.model, task.prompt)
    else:
        logger.info("task %s created provider=%s model=%s", task.pk, task.provider, task.model)


def cancel_task(task: Task) -> bool:
    """Cancel (Stop) the task; a job already running at the vendor is canceled there too, where
    the vendor's API allows (generator.jobs.cancel_provider_job, after the commit). A worker
    generating for it notices within a second, interrupts the provider where it can (the WebUI)
    and keeps nothing (generator.scheduler.watch)."""
    if not task.cancel():
        return False
    live.task_changed(task.owner_id)
    if task.provider_job is not None:
        transaction.on_commit(partial(async_task, CANCEL_PROVIDER_JOB, str(task.pk), task_name=f"cancel-{task.pk}"))
    logger.info("task %s canceled", task.pk)
    return True


def cancel_provider_job(task_id: str) -> None:
    task = Task.objects.filter(pk=task_id, status=Task.Status.CANCELED).first()
    if task is None or not isinstance(task.provider_job, dict):
        return
    provider = get_provider(task.provider)
    cancel = getattr(provider, "cancel_job", None)
    if cancel is not None:
        cancel(task.provider_job.get("state") or {})
        logger.info("task %s vendor job canceled provider=%s", task.pk, task.provider)


def store_images(task: Task, results: list[GeneratedImage], note: Reason | None = None) -> list[Image]:
    """Write files first, then all rows in one transaction; remove the files on failure.

    Completes the task (with `note`, e.g. how many pictures failed at the provider) only while
    the worker still holds it: canceled, failed or taken back meanwhile, nothing is kept.
    """
    pictures = [result.data for result in results if result.data is not None]
    if len(pictures) < len(results):
        raise PermanentProviderError("invalid_image", _("The provider returned an empty result."))
    task.set_progress(85)
    live.task_changed(task.owner_id)
    written: list[str] = []
    images: list[Image] = []
    try:
        for index, (result, picture) in enumerate(zip(results, pictures, strict=True)):
            image = Image(task=task, owner_id=task.owner_id, index=index, seed=result.seed, created_at=timezone.now())
            stored = imaging.as_png_with_metadata(picture, _png_texts(task, image))
            image.width, image.height, image.bytes = stored.width, stored.height, len(stored.png)
            image.file.save("original.png", ContentFile(stored.png), save=False)
            written.append(image.file.name)
            thumbnail = imaging.make_thumbnail(stored.png, settings.THUMBNAIL_SIZE)
            image.thumbnail.save("thumbnail.webp", ContentFile(thumbnail), save=False)
            written.append(image.thumbnail.name)
            images.append(image)
        cost, currency = prices.cost_of(task, len(images))
        with transaction.atomic():
            Image.objects.bulk_create(images)
            if not task.mark_completed(note, cost=cost, currency=currency):
                # Canceled or failed meanwhile: keep nothing half-done.
                raise _Superseded
            tag_by_source(task, images)
            live.task_changed(task.owner_id)
    except _Superseded:
        delete_files(written)
        return []
    except BaseException:
        delete_files(written)
        raise
    logger.info("task %s completed images=%s", task.pk, len(images))
    return images


class _Superseded(Exception):
    pass


# The tag every image made through the OpenAI-compatible gateway carries in its owner's gallery.
SOURCE_TAGS: dict[str, str] = {Task.Source.OPENAI: "openai-api"}


def tag_by_source(task: Task, images: list[Image]) -> None:
    """Tag the images with where they were asked for, when that has a tag (SOURCE_TAGS)."""
    name = SOURCE_TAGS.get(task.source)
    if name is None or not images:
        return
    tag = tags.tag_for(task.owner, name)
    tag.images.add(*images)


def _png_texts(task: Task, image: Image) -> dict[str, str]:
    """The PNG's text chunks: AUTOMATIC1111's `parameters` line and our own JSON, both with
    this picture's own seed (a random-seed task's images each have one)."""
    settings_used = {**task.parameters(), "seed": image.seed}
    del settings_used["num_images"]
    parameters = imaging.a1111_parameters(**settings_used, version=settings.ATELIER_VERSION)
    metadata = {
        "app": "atelier",
        "version": settings.ATELIER_VERSION,
        "task_id": str(task.pk),
        "image_id": str(image.pk),
        **settings_used,
        "created_at": image.created_at.isoformat(),
    }
    return {"parameters": parameters, "atelier": json.dumps(metadata, ensure_ascii=False)}


def delete_images(images: QuerySet[Image]) -> int:
    """Delete the rows now and their files once the deletion has committed."""
    with transaction.atomic():
        doomed = list(images.select_for_update().values_list("pk", "file", "thumbnail"))
        Image.objects.filter(pk__in=[pk for pk, _original, _thumbnail in doomed]).delete()
        names = [name for _pk, original, thumbnail in doomed for name in (original, thumbnail) if name]
        transaction.on_commit(partial(delete_files, names))
        transaction.on_commit(forget_gallery_choices)
    return len(doomed)


def delete_tasks(tasks: QuerySet[Task]) -> int:
    """Delete tasks with their images; files go once the deletion has committed.

    A worker still generating for a deleted task finds no row to complete and removes
    what it wrote (see store_images).
    """
    with transaction.atomic():
        task_ids = list(tasks.select_for_update().values_list("pk", flat=True))
        doomed = Image.objects.filter(task_id__in=task_ids).values_list("file", "thumbnail")
        names = [name for pair in doomed for name in pair if name]
        Task.objects.filter(pk__in=task_ids).delete()
        transaction.on_commit(partial(delete_files, names))
        transaction.on_commit(forget_gallery_choices)
    return len(task_ids)


def retry_task(task: Task, *, rate: Gate | None = None) -> Task:
    """A new task with the same settings (the failed or canceled one stays in the history).

    Raises TaskNotRetryable for a task that is not failed or canceled, and
    TooManyQueuedTasks (or what `rate` raises) like create_task.
    """
    if not task.is_retryable:
        raise TaskNotRetryable(task.pk)
    return create_task(task.owner, settings_of(task), rate=rate, source=task.source)


def settings_of(task: Task, **changes: object) -> TaskSettings:
    return TaskSettings(**{**task.parameters(), **changes})


def delete_files(names: list[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            logger.warning("could not delete stored file %s", name)


# --- what the gallery's filter form offers ---------------------------------------------------

GALLERY_CHOICES_VERSION_KEY = "gallery-choices-version"


def gallery_choices(owner: User) -> dict:
    """Only values the person has used: their tags, and the providers and models of their images.

    The provider/model pairs come from every one of the person's images joined to its task
    (tens of milliseconds at 20,000 images), so they are cached under a key that changes when
    the person's images do: their newest row (a new image is always the newest) and a version
    that every deletion renews (forget_gallery_choices). One index read replaces the join.
    """
    images = Image.objects.filter(owner=owner).order_by()
    newest = images.order_by("-created_at", "-id").values_list("created_at", "id").first()
    stamp = f"{newest[0].timestamp()}:{newest[1]}" if newest else "none"
    key = f"gallery-choices:{owner.pk}:{_gallery_choices_version()}:{stamp}"
    used = cache.get(key)
    if used is None:
        used = sorted(images.values_list("task__provider", "task__model").distinct())
        cache.set(key, used, timeout=24 * 3600)
    models: dict[str, list[str]] = {}
    for provider, model in used:
        models.setdefault(provider, []).append(model)
    tags = Tag.objects.filter(owner=owner).values_list("name", flat=True)
    return {"providers": list(models), "models_by_provider": models, "tag_names": list(tags)}


def forget_gallery_choices() -> None:
    """Images were deleted: nobody's cached choices may offer a model they no longer have."""
    cache.set(GALLERY_CHOICES_VERSION_KEY, uuid.uuid4().hex, timeout=None)


def _gallery_choices_version() -> str:
    version = cache.get(GALLERY_CHOICES_VERSION_KEY)
    if version is None:  # never set, or evicted: a new one, so no entry from before can match
        cache.add(GALLERY_CHOICES_VERSION_KEY, uuid.uuid4().hex, timeout=None)
        version = cache.get(GALLERY_CHOICES_VERSION_KEY, "")
    return version
