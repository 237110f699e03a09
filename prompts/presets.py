"""Applying a style preset to generation settings.

apply_preset(task_settings, preset, explicit) -> TaskSettings, exactly:

- The prompt: every `{prompt}` in the preset's template is replaced by the person's prompt
  (plain text replacement: other braces in either are left alone). A template without
  `{prompt}` is added after the prompt: "<prompt>, <template>". An empty template leaves the
  prompt as it is.
- The negative prompt: the person's own first, then each comma-separated term of the preset's
  that the person's does not already have (compared without case or surrounding spaces),
  joined with ", ". With no preset negative the person's stays exactly as typed.
- Defaults: the preset's model ("provider:model"), size (width and height, as a pair), steps
  and guidance scale replace the settings' values only for the fields not in `explicit` (the
  TaskSettings field names the person set themselves: "provider"/"model", "width"/"height",
  "steps", "guidance_scale"). A preset without a default leaves the field alone.
- Recorded: `preset_id`, `preset_name` (the name as the person saw it, kept when the preset is
  deleted) and `original_prompt`: the prompt as typed when the template changed it (an earlier
  original, from the prompt helper, is kept).

The result is not checked against the model's limits here: the caller does that (the form adds
a field error on `preset`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection

from generator.services import TaskSettings

from .models import PROMPT_PLACEHOLDER, Preset

SIZE_FIELDS = frozenset({"width", "height"})
MODEL_FIELDS = frozenset({"provider", "model"})


def fill_template(template: str, prompt: str) -> str:
    template = template.strip()
    if not template:
        return prompt
    if PROMPT_PLACEHOLDER in template:
        return template.replace(PROMPT_PLACEHOLDER, prompt).strip()
    return f"{prompt}, {template}"


def combine_negatives(own: str, preset: str) -> str:
    """The person's negative prompt, then the preset's terms it does not already have."""
    own = own.strip()
    terms = [term.strip() for term in own.split(",") if term.strip()]
    seen = {term.casefold() for term in terms}
    added = []
    for term in (term.strip() for term in preset.split(",")):
        if term and term.casefold() not in seen:
            seen.add(term.casefold())
            added.append(term)
    if not added:
        return own
    return ", ".join([own, *added]) if own else ", ".join(added)


def preset_defaults(preset: Preset, explicit: Collection[str]) -> dict[str, object]:
    """The TaskSettings fields the preset sets, leaving those the person set themselves."""
    changes: dict[str, object] = {}
    if preset.model and ":" in preset.model and not MODEL_FIELDS & set(explicit):
        changes["provider"], changes["model"] = preset.model.split(":", 1)
    if preset.width and preset.height and not SIZE_FIELDS & set(explicit):
        changes["width"], changes["height"] = preset.width, preset.height
    if preset.steps is not None and "steps" not in explicit:
        changes["steps"] = preset.steps
    if preset.guidance_scale is not None and "guidance_scale" not in explicit:
        changes["guidance_scale"] = preset.guidance_scale
    return changes


def apply_preset(task_settings: TaskSettings, preset: Preset, explicit: Collection[str]) -> TaskSettings:
    typed = task_settings.prompt
    prompt = fill_template(preset.prompt_template, typed)
    original = task_settings.original_prompt or (typed if prompt != typed else "")
    return dataclasses.replace(
        task_settings,
        prompt=prompt,
        negative_prompt=combine_negatives(task_settings.negative_prompt, preset.negative_prompt),
        original_prompt=original,
        preset_id=preset.pk,
        preset_name=preset.display_name,
        **preset_defaults(preset, explicit),  # type: ignore[arg-type]
    )
