"""Variant sets: one idea made several ways in one submission (README "Variants").

Orchestration for the pages and the API: the settings of each variant (the same prompt under
each chosen preset, or the prompt helper's rewrites of it), the set made whole or not at all
(generator.services.create_variant_set), and keeping one of its results.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace

from django.contrib.auth.models import User
from django.db import transaction
from django.utils.translation import gettext as _

from generator import services, tags
from generator.forms import MAX_PROMPT_LENGTH
from generator.models import Image, Task
from generator.services import Gate, TaskSettings

from . import helper, presets
from .models import Preset, VariantSet

# The tag a kept variant's images carry in the gallery (it moves when another one is kept).
KEPT_TAG = "kept"


class HelperUnavailable(Exception):
    """ "Surprise me" could not get its rewrites (the helper is off, timed out, refused…); the
    message says why, in the active language. Nothing was made."""


class NotKeepable(Exception):
    """Only a completed variant (one with pictures) can be kept."""


def variant_settings(
    base: TaskSettings,
    *,
    chosen_presets: Sequence[Preset] = (),
    rewrites: int = 0,
    explicit: Collection[str] = (),
) -> tuple[str, list[TaskSettings]]:
    """The set's mode and one TaskSettings per variant: `base` under each of `chosen_presets`,
    or (no presets) `rewrites` rewrites of its prompt by the prompt helper, each remembering
    the idea as its original prompt. Raises HelperUnavailable when the helper falls back."""
    if chosen_presets:
        return VariantSet.Mode.PRESETS, [presets.apply_preset(base, preset, explicit) for preset in chosen_presets]
    answer = helper.rewrites(base.prompt, rewrites)
    if answer.fallback_reason:
        raise HelperUnavailable(answer.fallback_reason)
    prompts = [prompt.strip() for prompt in answer.prompts[:rewrites]]
    if len(prompts) < rewrites or any(not prompt or len(prompt) > MAX_PROMPT_LENGTH for prompt in prompts):
        raise HelperUnavailable(_("The prompt helper did not come up with enough usable rewrites. Please try again."))
    return VariantSet.Mode.REWRITES, [replace(base, prompt=prompt, original_prompt=base.prompt) for prompt in prompts]


def make_variant_set(
    owner: User,
    base: TaskSettings,
    *,
    chosen_presets: Sequence[Preset] = (),
    rewrites: int = 0,
    explicit: Collection[str] = (),
    rate: Gate | None = None,
    source: str = Task.Source.WEB,
) -> VariantSet:
    """Make the set whole or refuse it whole: HelperUnavailable, or what
    services.create_variant_set raises (a limit)."""
    mode, wanted = variant_settings(base, chosen_presets=chosen_presets, rewrites=rewrites, explicit=explicit)
    return services.create_variant_set(owner, wanted, mode=mode, prompt=base.prompt, rate=rate, source=source)


def keep(variant_set: VariantSet, task: Task) -> None:
    """Mark `task` (one of the set's, completed) as the one kept and tag its images "kept"; the
    tag moves from the images of the one kept before. Raises NotKeepable for a task without
    pictures to keep."""
    if task.variant_set_id != variant_set.pk:
        raise ValueError("the task is not one of the set's")
    if task.status != Task.Status.COMPLETED:
        raise NotKeepable(task.pk)
    with transaction.atomic():
        previous = variant_set.kept_id
        variant_set.keep(task)
        tag = tags.tag_for(variant_set.owner, KEPT_TAG)
        if previous is not None and previous != task.pk:
            tag.images.remove(*Image.objects.filter(task_id=previous))
        tag.images.add(*Image.objects.filter(task=task))
