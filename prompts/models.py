"""Style presets (staff's for everyone, and each person's own) and variant sets (one idea made
several ways in one submission).

What a task took from them is written on the task itself (Task.preset, Task.preset_name,
Task.original_prompt, Task.variant_set), so deleting a preset never changes history.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language, gettext
from django.utils.translation import gettext_lazy as _

from generator.models import Image, Task

PROMPT_PLACEHOLDER = "{prompt}"


class PresetQuerySet(models.QuerySet["Preset"]):
    def usable_by(self, user: object) -> PresetQuerySet:
        """Staff's presets (no owner) and the person's own."""
        return self.filter(Q(owner__isnull=True) | Q(owner=user))


class Preset(models.Model):
    """A named style: a prompt template with {prompt}, a negative prompt and optional defaults.
    `owner` empty: a staff preset everyone sees (made in the admin); else one person's own."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="presets",
        verbose_name=_("owner"),
        help_text=_("Empty: a preset for everyone."),
    )
    name = models.CharField(_("name"), max_length=80)
    # The name shown to people reading Chinese; empty: `name` in every language.
    name_zh_hans = models.CharField(_("name in Chinese"), max_length=80, blank=True, default="")
    prompt_template = models.TextField(
        _("prompt template"),
        default=PROMPT_PLACEHOLDER,
        help_text=_("Where {prompt} stands, the person's prompt goes; without it the prompt comes first."),
    )
    negative_prompt = models.TextField(_("negative prompt"), blank=True, default="")
    # Defaults a form value the person typed always wins over (empty: no default).
    model = models.CharField(_("model"), max_length=200, blank=True, default="", help_text=_("provider:model"))
    width = models.PositiveIntegerField(_("width"), null=True, blank=True)
    height = models.PositiveIntegerField(_("height"), null=True, blank=True)
    steps = models.PositiveSmallIntegerField(
        _("steps"), null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(150)]
    )
    guidance_scale = models.FloatField(
        _("guidance scale"), null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(30)]
    )
    preview = models.ForeignKey(
        Image,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("preview image"),
    )
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    objects = PresetQuerySet.as_manager()

    class Meta:
        verbose_name = _("style preset")
        verbose_name_plural = _("style presets")
        ordering = ["position", "name", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="preset_owner_name"),
            models.UniqueConstraint(fields=["name"], condition=Q(owner__isnull=True), name="preset_staff_name"),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        if self.name_zh_hans and (get_language() or "").lower().startswith("zh"):
            return self.name_zh_hans
        return self.name

    @property
    def is_shared(self) -> bool:
        return self.owner_id is None

    @property
    def size(self) -> tuple[int, int] | None:
        return (self.width, self.height) if self.width and self.height else None

    def clean(self) -> None:
        """A size is a pair; a model is "provider:model"."""
        errors: dict[str, str] = {}
        if bool(self.width) != bool(self.height):
            errors["height" if self.width else "width"] = gettext("Give both width and height, or neither.")
        if self.model and not re.fullmatch(r"[^:\s]+:\S+", self.model):
            errors["model"] = gettext("Write the model as provider:model, or leave it empty.")
        if errors:
            raise ValidationError(errors)


class VariantSet(models.Model):
    """Sibling tasks made from one submission: the same prompt under several presets, or several
    rewrites of it by the prompt helper. `kept` is the task the person chose."""

    class Mode(models.TextChoices):
        PRESETS = "presets", _("one prompt, several presets")
        REWRITES = "rewrites", _("several rewrites of the prompt")

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="variant_sets", verbose_name=_("owner")
    )
    mode = models.CharField(_("kind"), max_length=16, choices=Mode.choices)
    prompt = models.TextField(_("idea"))
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    kept = models.ForeignKey(
        Task, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("kept")
    )

    MIN_SIZE = 2
    MAX_SIZE = 6

    class Meta:
        verbose_name = _("variant set")
        verbose_name_plural = _("variant sets")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "-created_at"], name="variantset_owner_recent")]

    def __str__(self) -> str:
        return f"{self.get_mode_display()}: {self.prompt[:40]}"

    def get_absolute_url(self) -> str:
        return reverse("prompts:variant_set", args=[self.pk])

    def keep(self, task: Task) -> None:
        """Remember `task` (one of the set's) as the one the person chose."""
        self.kept = task
        self.save(update_fields=["kept"])
