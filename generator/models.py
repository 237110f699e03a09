"""Task, Image and Tag: the data Atelier keeps for every person.

Models change only their own rows (verbs below); anything that touches a provider,
files or several models lives in generator.services.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from functools import cached_property, lru_cache
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.db import models
from django.db.models.functions import Lower
from django.dispatch import receiver
from django.urls import get_script_prefix, reverse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext, ngettext, pgettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from . import progress
from .reasons import Reason

# The status sets every part of Atelier uses: the only place they are written down.
ACTIVE_STATUSES = ("pending", "processing", "retrying")
CLAIMABLE_STATUSES = ("pending", "retrying")
# Any task not yet finished can be stopped: waiting ones at once, generating ones too (the
# worker then interrupts the provider where it can and keeps nothing: docs/SCHEDULING.md).
CANCELABLE_STATUSES = ACTIVE_STATUSES
FINISHED_STATUSES = ("completed", "failed", "canceled")
RETRYABLE_STATUSES = ("failed", "canceled")
# What a task asks the provider for: copied into retries, PNG metadata, the API, the zip
# manifest and "reuse settings" through Task.parameters().
PARAMETER_FIELDS = (
    "prompt",
    "negative_prompt",
    "provider",
    "model",
    "width",
    "height",
    "num_images",
    "steps",
    "guidance_scale",
    "seed",
)


def prompt_matches(text: str) -> models.Q:
    """Tasks whose prompt or negative prompt contains `text` (any case): the history's search."""
    return models.Q(prompt__icontains=text) | models.Q(negative_prompt__icontains=text)


class Task(models.Model):
    class Source(models.TextChoices):
        """Where the submission came from: the pages, Atelier's own API, or the
        OpenAI-compatible gateway (/v1/, whose images are tagged with it)."""

        WEB = "web", pgettext_lazy("task source", "Pages")
        API = "api", pgettext_lazy("task source", "API")
        OPENAI = "openai", pgettext_lazy("task source", "OpenAI-compatible API")

    class Status(models.TextChoices):
        PENDING = "pending", pgettext_lazy("task status", "Pending")
        PROCESSING = "processing", pgettext_lazy("task status", "Generating")
        RETRYING = "retrying", pgettext_lazy("task status", "Retrying")
        COMPLETED = "completed", pgettext_lazy("task status", "Completed")
        FAILED = "failed", pgettext_lazy("task status", "Failed")
        CANCELED = "canceled", pgettext_lazy("task status", "Canceled")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tasks", verbose_name=_("owner")
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    provider = models.CharField(_("provider"), max_length=64)
    model = models.CharField(_("model"), max_length=128)
    prompt = models.TextField(_("prompt"))
    negative_prompt = models.TextField(_("negative prompt"), blank=True, default="")
    width = models.PositiveIntegerField(_("width"))
    height = models.PositiveIntegerField(_("height"))
    num_images = models.PositiveSmallIntegerField(_("number of images"), default=1)
    steps = models.PositiveSmallIntegerField(_("steps"), null=True, blank=True)
    guidance_scale = models.FloatField(_("guidance scale"), null=True, blank=True)
    seed = models.BigIntegerField(_("seed"), null=True, blank=True, help_text=_("Empty means a random seed."))
    progress = models.PositiveSmallIntegerField(_("progress"), default=0)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    error_code = models.CharField(_("error code"), max_length=64, blank=True, default="")
    # The reason in English, for staff, searches and rows older than error_reason.
    error_message = models.TextField(_("error message"), blank=True, default="")
    # The same reason untranslated (reasons.Reason.as_json()): error_text shows it in the reader's language.
    error_reason = models.JSONField(_("error reason"), null=True, blank=True, editable=False)
    provider_request_id = models.CharField(_("provider request id"), max_length=128, blank=True, default="")
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    # When a worker last took the task, and when it was last put on the queue: the sweeper
    # uses them to find tasks whose worker died and tasks whose queue message was lost.
    claimed_at = models.DateTimeField(_("claimed"), null=True, blank=True, editable=False)
    enqueued_at = models.DateTimeField(_("enqueued"), null=True, blank=True, editable=False)
    # The scheduler's columns (generator.scheduler, docs/SCHEDULING.md). When the task's next
    # step is due: its next attempt (retrying) or the next look at its vendor job (processing).
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True, editable=False)
    # The worker running a step right now ("" between steps) and its last sign of life.
    held_by = models.CharField(_("held by"), max_length=128, blank=True, default="", editable=False)
    heartbeat_at = models.DateTimeField(_("heartbeat"), null=True, blank=True, editable=False)
    # An asynchronous provider's job, once submitted: {"state": provider's own, "deadline",
    # "interval", "submitted_at", "check_errors"}. Never submitted twice while it is set.
    provider_job = models.JSONField(_("provider job"), null=True, blank=True, editable=False)
    # Where the task ran first when it moved to the provider's fallback: provider, model, why.
    failed_over_from = models.JSONField(_("failed over from"), null=True, blank=True, editable=False)
    # Something a finished task's owner should know, untranslated (reasons.Reason.as_json()):
    # e.g. that some of the pictures asked for failed at the provider.
    note = models.JSONField(_("note"), null=True, blank=True, editable=False)
    source = models.CharField(_("source"), max_length=16, choices=Source.choices, default=Source.WEB)
    # What the pictures kept cost at the provider's price when the task completed (usage.prices);
    # null: not completed, or no price known for its model.
    cost = models.DecimalField(_("cost"), max_digits=12, decimal_places=4, null=True, blank=True, editable=False)
    cost_currency = models.CharField(_("currency"), max_length=3, blank=True, default="", editable=False)
    # Prompt assistance (prompts/): the prompt as the person typed it when the helper's
    # suggestion or a preset's template changed it ("" = `prompt` is as typed), the preset
    # applied (its name kept for history), and the variant set the task belongs to.
    original_prompt = models.TextField(_("original prompt"), blank=True, default="")
    preset = models.ForeignKey(
        "prompts.Preset",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tasks",
        editable=False,
        verbose_name=_("preset"),
    )
    preset_name = models.CharField(_("preset name"), max_length=80, blank=True, default="", editable=False)
    variant_set = models.ForeignKey(
        "prompts.VariantSet",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tasks",
        editable=False,
        verbose_name=_("variant set"),
    )
    # "Use these settings" from Explore: the published image this task took its settings from.
    from_publication = models.ForeignKey(
        "sharing.Publication",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="uses",
        editable=False,
        verbose_name=_("settings from"),
    )

    class Meta:
        verbose_name = _("task")
        verbose_name_plural = _("tasks")
        ordering = ["-created_at"]
        indexes = [
            # history page and API task list: a person's tasks, newest first
            models.Index(fields=["owner", "-created_at"], name="task_owner_created"),
            # active-task count per person and the create page's running cards
            models.Index(fields=["owner", "status"], name="task_owner_status"),
            # the sweeper: tasks stuck in a status since a time
            models.Index(fields=["status", "claimed_at"], name="task_status_claimed"),
            # the scheduler: runnable tasks by status and due time
            models.Index(fields=["status", "next_attempt_at"], name="task_status_due"),
        ]

    def __str__(self) -> str:
        return f"{self.prompt[:40]} ({self.get_status_display()})"

    def get_absolute_url(self) -> str:
        return reverse("generator:task_detail", args=[self.pk])

    # --- read-only properties -----------------------------------------------------------

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def is_cancelable(self) -> bool:
        return self.status in CANCELABLE_STATUSES

    @property
    def is_generating(self) -> bool:
        """A worker (or a vendor job) is making the pictures now: stopping it is a Stop."""
        return self.status == self.Status.PROCESSING

    @property
    def has_preview(self) -> bool:
        """The provider's in-progress picture is there to show (generator.progress)."""
        return self.status == self.Status.PROCESSING and progress.has_preview(self.pk)

    @property
    def elapsed_seconds(self) -> int:
        """Whole seconds since the task first started (0 before); to now while it runs."""
        if self.started_at is None:
            return 0
        end = self.finished_at or timezone.now()
        return max(0, int((end - self.started_at).total_seconds()))

    @property
    def elapsed_text(self) -> str:
        """elapsed_seconds as m:ss (h:mm:ss past an hour); static/js/progress.js ticks it on."""
        minutes, seconds = divmod(self.elapsed_seconds, 60)
        hours, minutes = divmod(minutes, 60)
        return f"{hours}:{minutes:02}:{seconds:02}" if hours else f"{minutes}:{seconds:02}"

    @cached_property
    def estimated_time(self) -> float | None:
        """Seconds a task like this usually takes, start to finish (None without history);
        only for tasks not yet finished."""
        if not self.is_active:
            return None
        return progress.estimated_seconds(self.provider, self.model)

    @property
    def estimated_text(self) -> str:
        """estimated_time for the card, in the active language ("" without one)."""
        seconds = self.estimated_time
        if seconds is None:
            return ""
        if seconds < 90:
            shown = number_format(round(seconds, 1) if seconds < 10 else round(seconds))
            return gettext("usually about %(seconds)s s") % {"seconds": shown}
        minutes = int(seconds / 60 + 0.5)
        return ngettext("usually about %(minutes)s minute", "usually about %(minutes)s minutes", minutes) % {
            "minutes": minutes
        }

    @property
    def is_watching_job(self) -> bool:
        """Generating at the vendor: submitted once, now only looked at."""
        return self.status == self.Status.PROCESSING and self.provider_job is not None

    @property
    def is_queued_at_vendor(self) -> bool:
        """Watching a vendor job that, at the last look, had not started yet."""
        return self.is_watching_job and isinstance(self.provider_job, dict) and bool(self.provider_job.get("queued"))

    @property
    def note_text(self) -> str:
        reason = Reason.from_json(self.note)
        return reason.render() if reason is not None else ""

    @property
    def failover_text(self) -> str:
        """Where the task ran first and why it moved, in the active language ("" if it did not)."""
        moved = self.failed_over_from
        if not isinstance(moved, dict):
            return ""
        reason = Reason.from_json(moved.get("reason"))
        return gettext("First tried %(provider)s (%(model)s): %(reason)s") % {
            "provider": moved.get("provider", ""),
            "model": moved.get("model", ""),
            "reason": reason.render() if reason is not None else moved.get("code", ""),
        }

    @property
    def is_retryable(self) -> bool:
        return self.status in RETRYABLE_STATUSES

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    def parameters(self) -> dict[str, Any]:
        """The generation settings this task asked for (PARAMETER_FIELDS), by field name."""
        return {name: getattr(self, name) for name in PARAMETER_FIELDS}

    @property
    def duration(self) -> timedelta | None:
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None

    @property
    def error_text(self) -> str:
        """Why the task failed or is retrying, in the active language (older rows: as stored)."""
        reason = Reason.from_json(self.error_reason)
        return reason.render() if reason is not None else self.error_message

    @property
    def ordered_images(self) -> list[Image]:
        """Images in the order the provider made them (works with prefetch_related)."""
        return sorted(self.images.all(), key=lambda image: image.index)

    @property
    def seed_label(self) -> str:
        """The seeds the images carry once there are images (a fixed seed 42 for 3 images is
        42–44), else the seed asked for, or "random". An unfinished task has no images yet:
        it does not ask for them (its card is polled)."""
        images = self.ordered_images if self.is_finished else []
        seeds = [image.seed for image in images if image.seed is not None]
        if not seeds:
            return str(self.seed) if self.seed is not None else pgettext("seed", "random")
        if len(seeds) == 1:
            return str(seeds[0])
        if seeds == list(range(seeds[0], seeds[0] + len(seeds))):
            return f"{seeds[0]}–{seeds[-1]}"
        return ", ".join(str(seed) for seed in seeds)  # not a run (a provider's own seeds, a wrap)

    @property
    def size_label(self) -> str:
        return f"{self.width}×{self.height}"

    # --- verbs: each changes only this row, conditionally, and says whether it did ------
    # A worker holds the task (held_by) while it runs one step; the verbs that end a step
    # only apply while it still does, so a step taken back from a stalled worker cannot be
    # finished twice. generator.scheduler claims tasks (the claim is a query, not a verb).

    def _held(self) -> models.QuerySet[Task]:
        return Task.objects.filter(pk=self.pk, status=self.Status.PROCESSING, held_by=self.held_by)

    def _apply(self, changes: dict[str, Any]) -> None:
        for name, value in changes.items():
            setattr(self, name, value)

    def set_progress(self, percent: int) -> None:
        percent = max(0, min(100, int(percent)))
        Task.objects.filter(pk=self.pk, status=self.Status.PROCESSING).update(progress=percent)
        self.progress = percent

    def report_progress(self, percent: int) -> bool:
        """The holding worker's progress; False when the task is no longer its own (stopped)."""
        updated = self._held().update(progress=percent)
        if updated:
            self.progress = percent
        return bool(updated)

    def is_held(self) -> bool:
        """Still generating on this worker's hold (not stopped, finished or taken back)."""
        return self._held().exists()

    def beat(self) -> bool:
        """The holding worker is alive (generator.scheduler.heartbeat calls this every few seconds)."""
        return bool(self._held().update(heartbeat_at=timezone.now()))

    def record_job(self, job: dict) -> bool:
        """Keep the vendor's job the moment it is known, so no later step submits it again."""
        updated = self._held().update(provider_job=job)
        if updated:
            self.provider_job = job
        return bool(updated)

    def watch_job(self, job: dict, next_check_at: Any, progress: int | None = None) -> bool:
        """End a step of a submitted job: no worker holds it until its next look is due."""
        changes: dict[str, Any] = {"provider_job": job, "next_attempt_at": next_check_at, "held_by": ""}
        if progress is not None:
            changes["progress"] = max(self.progress, progress)
        updated = self._held().update(**changes)
        if updated:
            self._apply(changes)
        return bool(updated)

    def mark_retrying(self, code: str, message: Reason | str, next_attempt_at: Any = None) -> bool:
        """A transient failure: release the task; it runs again once next_attempt_at is due."""
        changes = {
            "status": self.Status.RETRYING,
            "held_by": "",
            "next_attempt_at": next_attempt_at or timezone.now(),
            "provider_job": None,
            **error_fields(code, message),
        }
        updated = self._held().update(**changes)
        if updated:
            self._apply(changes)
        return bool(updated)

    def move_to(self, provider: str, model: str, changes: dict[str, Any], moved_from: dict) -> bool:
        """Fail over: the same task, once, on another provider; it waits to run again there."""
        fields = {
            "status": self.Status.PENDING,
            "provider": provider,
            "model": model,
            "held_by": "",
            "next_attempt_at": None,
            "provider_job": None,
            "attempts": 0,
            "progress": 0,
            "failed_over_from": moved_from,
            **changes,
            **error_fields("", ""),
        }
        updated = self._held().update(**fields)
        if updated:
            self._apply(fields)
        return bool(updated)

    def mark_failed(self, code: str, message: Reason | str) -> bool:
        """End the task failed: while a worker holds it, only that worker may (see _held)."""
        active = Task.objects.filter(pk=self.pk, status__in=ACTIVE_STATUSES)
        if self.status == self.Status.PROCESSING and self.held_by:
            active = self._held()
        updated = active.update(
            status=self.Status.FAILED,
            finished_at=timezone.now(),
            held_by="",
            next_attempt_at=None,
            **error_fields(code, message),
        )
        if updated:
            self.refresh_from_db()
        return bool(updated)

    def mark_completed(self, note: Reason | None = None, cost: Any = None, currency: str = "") -> bool:
        updated = self._held().update(
            status=self.Status.COMPLETED,
            cost=cost,
            cost_currency=currency if cost is not None else "",
            progress=100,
            finished_at=timezone.now(),
            held_by="",
            next_attempt_at=None,
            note=note.as_json() if note is not None else None,
            **error_fields("", ""),
        )
        if updated:
            self.refresh_from_db()
        return bool(updated)

    def cancel(self) -> bool:
        """Stop a task that has not finished: it ends canceled at once. A worker generating for
        it finds it no longer held, stops the provider where it can and keeps nothing; a vendor
        job is canceled at the vendor afterwards (services.cancel_task). One conditional UPDATE:
        against a completion racing it, exactly one of the two applies."""
        updated = Task.objects.filter(pk=self.pk, status__in=CANCELABLE_STATUSES).update(
            status=self.Status.CANCELED, finished_at=timezone.now(), held_by="", next_attempt_at=None
        )
        if updated:
            self.refresh_from_db()
        return bool(updated)


def error_fields(code: str, message: Reason | str) -> dict:
    """The columns that record why a task failed: its code, the English text and the Reason.

    A plain string (no translation) is stored as it is and shown as it is.
    """
    if isinstance(message, Reason):
        return {"error_code": code, "error_message": message.english(), "error_reason": message.as_json()}
    return {"error_code": code, "error_message": message, "error_reason": None}


class ProviderCall(models.Model):
    """One generation sent to a provider: <PROVIDER>_RATE counts these over its window.

    Written in the same transaction as the claim that starts the call, on every machine's
    database alike; rows older than the longest window are deleted by the dispatcher.
    """

    provider = models.CharField(_("provider"), max_length=64)
    started_at = models.DateTimeField(_("started"), default=timezone.now)

    class Meta:
        verbose_name = _("provider call")
        verbose_name_plural = _("provider calls")
        indexes = [models.Index(fields=["provider", "started_at"], name="providercall_window")]

    def __str__(self) -> str:
        return f"{self.provider} {self.started_at:%Y-%m-%d %H:%M:%S}"


class Tag(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tags", verbose_name=_("owner")
    )
    name = models.CharField(_("name"), max_length=50)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(Lower("name"), "owner", name="tag_unique_name_per_owner_ci"),
        ]

    def __str__(self) -> str:
        return self.name


def original_upload_to(image: Image, filename: str) -> str:
    return f"images/{image.owner_id}/{image.created_at:%Y/%m}/{image.pk}.png"


def thumbnail_upload_to(image: Image, filename: str) -> str:
    return f"thumbs/{image.owner_id}/{image.created_at:%Y/%m}/{image.pk}.webp"


class Image(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="images", verbose_name=_("task"))
    # Denormalised from the task so gallery queries need no join.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="images", verbose_name=_("owner")
    )
    index = models.PositiveSmallIntegerField(_("index"), default=0, help_text=_("Position within its task."))
    file = models.FileField(_("file"), upload_to=original_upload_to, max_length=255)
    thumbnail = models.FileField(_("thumbnail"), upload_to=thumbnail_upload_to, max_length=255)
    width = models.PositiveIntegerField(_("width"))
    height = models.PositiveIntegerField(_("height"))
    bytes = models.PositiveBigIntegerField(_("bytes"))
    mime = models.CharField(_("MIME type"), max_length=32, default="image/png")
    seed = models.BigIntegerField(_("seed"), null=True, blank=True)
    is_favorite = models.BooleanField(_("favourite"), default=False)
    tags = models.ManyToManyField(Tag, related_name="images", blank=True, verbose_name=_("tags"))
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("image")
        verbose_name_plural = _("images")
        ordering = ["-created_at", "-id"]
        indexes = [
            # gallery: a person's images, newest first (keyset on created_at, id)
            models.Index(fields=["owner", "-created_at", "-id"], name="image_owner_created"),
        ]

    def __str__(self) -> str:
        return gettext("Image %(id)s") % {"id": self.pk}

    @property
    def url(self) -> str:
        return image_url("api:image_file", self.pk)

    @property
    def thumbnail_url(self) -> str:
        return image_url("api:image_thumbnail", self.pk)

    @property
    def detail_url(self) -> str:
        return image_url("generator:image_detail", self.pk)

    @property
    def download_url(self) -> str:
        return f"{self.url}?download=1"

    @property
    def bare_download_url(self) -> str:
        """The original without the prompt and settings embedded in it."""
        return f"{self.url}?download=1&metadata=0"


# A gallery page links each of its 48 images twice: resolving each link would cost a
# seventh of the page's time. The pattern is resolved once, then the id is put in its place.
_URL_PLACEHOLDER = str(uuid.UUID(int=0))


@lru_cache(maxsize=32)
def _url_pattern(name: str, script_prefix: str) -> str:
    return reverse(name, args=[_URL_PLACEHOLDER])


def image_url(name: str, pk: uuid.UUID) -> str:
    """reverse(name, args=[pk]) for a route whose only parameter is an id (an image's, or a
    publication's: sharing.models)."""
    return _url_pattern(name, get_script_prefix()).replace(_URL_PLACEHOLDER, str(pk))


@receiver(setting_changed)
def _forget_url_patterns(*, setting: str, **kwargs) -> None:
    if setting == "ROOT_URLCONF":
        _url_pattern.cache_clear()


class ProviderStatus(models.Model):
    """What the last catalogue check (generator.catalogue) found for one configured provider.

    One row per provider, replaced at each check: whether it answered, and which of its
    configured models it no longer offers (those are hidden and their tasks fail at once).
    """

    provider = models.CharField(_("provider"), max_length=64, unique=True)
    checked_at = models.DateTimeField(_("checked"), default=timezone.now)
    reachable = models.BooleanField(_("reachable"), default=True)
    error_code = models.CharField(_("error code"), max_length=64, blank=True, default="")
    # Why the check failed, untranslated (reasons.Reason.as_json()).
    error_reason = models.JSONField(_("error reason"), null=True, blank=True, editable=False)
    # The model ids the provider listed at its last successful listing; null when it cannot list them.
    listed_models = models.JSONField(_("listed models"), null=True, blank=True, editable=False)
    # Configured model ids missing from that listing, sorted.
    retired_models = models.JSONField(_("retired models"), default=list, blank=True, editable=False)

    class Meta:
        verbose_name = _("provider status")
        verbose_name_plural = _("provider statuses")
        ordering = ["provider"]

    def __str__(self) -> str:
        return self.provider

    @property
    def error_text(self) -> str:
        reason = Reason.from_json(self.error_reason)
        return reason.render() if reason else ""


# How long an Idempotency-Key of POST /api/v1/generate stands for its task.
IDEMPOTENCY_WINDOW = timedelta(hours=24)
IDEMPOTENCY_KEY_MAX_LENGTH = 255


class IdempotencyKey(models.Model):
    """A key a client sent with POST /api/v1/generate (the Idempotency-Key header): the same
    key from the same person within IDEMPOTENCY_WINDOW answers with the same task instead of
    making another. Unique per owner, so two requests racing with one key make one task.
    Deleting the task frees its key."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name=_("owner")
    )
    key = models.CharField(_("key"), max_length=IDEMPOTENCY_KEY_MAX_LENGTH)
    # sha256 of the request's JSON, canonical: the same key with another body is refused.
    fingerprint = models.CharField(_("fingerprint"), max_length=64)
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="+", verbose_name=_("task"))
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("idempotency key")
        verbose_name_plural = _("idempotency keys")
        constraints = [models.UniqueConstraint(fields=["owner", "key"], name="idempotency_owner_key")]
        indexes = [
            # services.create_task: a person's expired keys are pruned when they send a new one
            models.Index(fields=["owner", "created_at"], name="idempotency_owner_created"),
        ]

    def __str__(self) -> str:
        return self.key
