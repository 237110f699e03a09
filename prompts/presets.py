"""Applying a style preset to generation settings. (To be built: the presets part.)

apply_preset(task_settings, preset, explicit) -> TaskSettings: the prompt put into the preset's
template, its negative prompt, and its defaults for every setting the person did not give
(`explicit`: the names of the TaskSettings fields the person set themselves), with `preset_id`,
`preset_name` and `original_prompt` recorded.
"""

from __future__ import annotations

from collections.abc import Collection

from generator.services import TaskSettings

from .models import Preset


def apply_preset(task_settings: TaskSettings, preset: Preset, explicit: Collection[str]) -> TaskSettings:
    raise NotImplementedError
