"""The generation form: the same validation serves the create page and the JSON API."""

from __future__ import annotations

import dataclasses
import json
import re
import unicodedata
import uuid
from typing import Any, cast

from django import forms
from django.utils.functional import Promise
from django.utils.translation import gettext, ngettext, pgettext
from django.utils.translation import gettext_lazy as _

from prompts.models import Preset
from prompts.presets import apply_preset
from sharing.publishing import usable_publication_id

from .catalogue import is_retired, offered_models
from .models import Image, Task
from .providers import enabled_providers
from .providers.base import guidance_range_error, steps_range_error
from .providers.errors import MESSAGES
from .services import TaskSettings

MAX_PROMPT_LENGTH = 2000
MAX_SEED = 9_999_999_999  # the largest any provider takes (SiliconFlow); models narrow it
SIZE_PRESETS: list[tuple[str, str]] = [
    ("1024x1024", "1024×1024 · 1:1"),
    ("512x512", "512×512 · 1:1"),
    ("768x768", "768×768 · 1:1"),
    ("1152x864", "1152×864 · 4:3"),
    ("864x1152", "864×1152 · 3:4"),
    ("1280x720", "1280×720 · 16:9"),
    ("720x1280", "720×1280 · 9:16"),
]
# Control, format (zero-width, direction marks) and separator characters: a prompt made
# only of these looks empty.
INVISIBLE_CATEGORIES = {"Cc", "Cf", "Zs", "Zl", "Zp"}
SIZE_RE = re.compile(r"^\s*(\d{1,5})\s*[x×*]\s*(\d{1,5})\s*$")
# The form's fields a preset has defaults for, and the TaskSettings field each one fills.
PRESET_SETTINGS = {"provider": "provider", "model": "model", "width": "width", "height": "height"}
PRESET_SETTINGS |= {"steps": "steps", "scale": "guidance_scale"}
PAGE_SIZE = ("1024", "1024")  # the page's width and height before anyone changes them


def fields_for(task: Task, **changes: object) -> dict[str, object]:
    """The form's fields for a task's settings ("Reuse settings" and "Vary" fill the form from
    them); `changes` replace or add fields. Empty values are left out."""
    parameters = task.parameters()
    fields = {
        "prompt": parameters["prompt"],
        "negative_prompt": parameters["negative_prompt"],
        "model": f"{parameters['provider']}:{parameters['model']}",
        "width": parameters["width"],
        "height": parameters["height"],
        "num_images": parameters["num_images"],
        "seed": parameters["seed"],
        "steps": parameters["steps"],
        "scale": parameters["guidance_scale"],
        **changes,
    }
    return {name: value for name, value in fields.items() if value not in (None, "")}


def reuse_fields(image: Image) -> dict[str, object]:
    """The form filled in with an image's settings, its seed kept ("Reuse settings")."""
    task = image.task
    seed = image.seed if image.seed is not None else task.seed
    fields = fields_for(task, seed=seed)
    if "seed" in fields:
        fields["random_seed"] = False
    return fields


def task_fields(task: Task) -> dict[str, object]:
    """The form filled in with a task's settings ("Reuse settings" on the history and the
    task page): a fixed seed is kept, a random one stays random."""
    fields = fields_for(task)
    fields["random_seed"] = "seed" not in fields
    return fields


def provider_choices() -> list[tuple[str, str]]:
    return [(name, provider.label) for name, provider in enabled_providers().items()]


def model_choices() -> list[tuple[str | Promise, list[tuple[str, str | Promise, str]]]]:
    """Grouped choices for the page's provider/model select: value "provider:model", label,
    and the model's limits as JSON (the page's script narrows sizes and counts with them)."""
    return [
        (provider.label, [(f"{name}:{m.id}", m.label, json.dumps(m.as_dict())) for m in offered_models(name, provider)])
        for name, provider in enabled_providers().items()
    ]


def size_choices() -> list[tuple[str, str]]:
    """The presets, then every fixed or suggested size of an offered model that is not a preset."""
    choices = list(SIZE_PRESETS)
    known = {value for value, _label in choices}
    for name, provider in enabled_providers().items():
        for model in offered_models(name, provider):
            for width, height in model.sizes + model.suggested_sizes:
                value = f"{width}x{height}"
                if value not in known:
                    known.add(value)
                    choices.append((value, f"{width}×{height}"))
    return choices


@dataclasses.dataclass(frozen=True)
class PresetChoices:
    yours: list[Preset]
    everyones: list[Preset]
    selected: Preset | None


def _first_model() -> str:
    """The page's model select starts on the first model offered: "provider:model"."""
    for name, provider in enabled_providers().items():
        for model in offered_models(name, provider):
            return f"{name}:{model.id}"
    return ""


class GenerateForm(forms.Form):
    prompt = forms.CharField(
        max_length=MAX_PROMPT_LENGTH,
        label=_("Prompt"),
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": _("A lighthouse on a cliff at dawn, oil painting")}),
    )
    negative_prompt = forms.CharField(
        required=False,
        max_length=MAX_PROMPT_LENGTH,
        label=_("Negative prompt"),
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": _("What to leave out (optional)")}),
    )
    provider = forms.CharField(label=_("Provider"), required=False)
    model = forms.CharField(label=_("Model"), required=False, max_length=128)
    # The page's presets: a shortcut that fills width and height (static/js/app.js); when one is
    # chosen it wins, so the page works without JavaScript. "" means the width and height given.
    size = forms.ChoiceField(label=_("Size"), required=False, choices=SIZE_PRESETS, initial="")
    width = forms.IntegerField(label=_("Width"), required=False, min_value=1, max_value=100_000, initial=1024)
    height = forms.IntegerField(label=_("Height"), required=False, min_value=1, max_value=100_000, initial=1024)
    num_images = forms.IntegerField(
        label=_("Images"),
        min_value=1,
        max_value=4,
        initial=1,
        required=False,
        error_messages={
            "min_value": _("Choose between 1 and 4 images."),
            "max_value": _("Choose between 1 and 4 images."),
        },
    )
    steps = forms.IntegerField(label=_("Steps"), required=False, min_value=1, max_value=150)
    scale = forms.FloatField(label=_("Guidance scale"), required=False, min_value=0, max_value=30)
    seed = forms.IntegerField(
        label=_("Seed"),
        required=False,
        min_value=-1,
        max_value=MAX_SEED,
        error_messages={"invalid": _("Enter a whole number for the seed, or choose random.")},
    )
    random_seed = forms.BooleanField(required=False, initial=True, label=_("Random seed"))
    # "Use these settings" from Explore: the published image the settings came from. Recorded
    # only while it is on Explore with its prompt shown; anything else reads as none, never an error.
    from_publication = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)
    # A style preset (prompts.Preset) the person may use: staff's, or their own.
    preset = forms.ModelChoiceField(
        queryset=Preset.objects.none(),
        required=False,
        label=_("Style preset"),
        error_messages={"invalid_choice": _("No such preset."), "invalid_pk_value": _("No such preset.")},
    )
    # The prompt as typed when the prompt helper's suggestion was accepted (prompts/); kept only
    # when it differs from the prompt sent.
    original_prompt = forms.CharField(required=False, max_length=MAX_PROMPT_LENGTH, widget=forms.HiddenInput)

    def __init__(self, *args, user: object | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        usable = Preset.objects.filter(owner__isnull=True) if user is None else Preset.objects.usable_by(user)
        self.usable_presets = usable.select_related("preview")
        self.preset_field.queryset = self.usable_presets
        self._preset_problems: list[str] | None = None
        self._preset_record: dict[str, Any] = {}
        custom = ("", gettext("Custom: the width and height below"))
        self.size_field.choices = [custom, *self._with_requested_size(size_choices())]
        # Messages with numbers in them: translated here, in the request's language.
        seed_range = gettext("The seed must be between 0 and %(max)s.") % {"max": MAX_SEED}
        self.fields["seed"].error_messages.update({"min_value": seed_range, "max_value": seed_range})
        self.fields["prompt"].error_messages.update(
            {
                "required": gettext("Describe the picture you want."),
                "max_length": gettext("Keep the prompt under %(max)s characters.") % {"max": MAX_PROMPT_LENGTH},
            }
        )

    def _with_requested_size(self, choices: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """A size from "reuse settings" that is no preset still appears (models check it)."""
        requested = str(self.data.get("size") or self.initial.get("size") or "")
        match = SIZE_RE.match(requested)
        if match and requested not in {value for value, _label in choices}:
            width, height = match.groups()
            return [*choices, (f"{int(width)}x{int(height)}", f"{int(width)}×{int(height)}")]
        return choices

    @property
    def size_field(self) -> forms.ChoiceField:
        return cast(forms.ChoiceField, self.fields["size"])

    @property
    def preset_field(self) -> forms.ModelChoiceField:
        return cast(forms.ModelChoiceField, self.fields["preset"])

    def preset_choices(self) -> PresetChoices:
        """The picker's presets, in one query: the person's own, everyone's (staff's), and the
        one chosen."""
        presets = list(self.usable_presets)
        chosen = str(self["preset"].value() or "")
        return PresetChoices(
            yours=[p for p in presets if not p.is_shared],
            everyones=[p for p in presets if p.is_shared],
            selected=next((p for p in presets if str(p.pk) == chosen), None),
        )

    def explicit_settings(self) -> set[str]:
        """The TaskSettings fields the person set themselves, which a preset's defaults leave alone.

        The API and scripts send only what they mean: every field sent counts. The page (it sends
        `size`) always sends a model, width and height: there a size counts when a size preset is
        chosen or the width and height are not the page's 1024×1024, and a model when it is not the
        first one offered (what the page starts with). Steps and guidance count when filled in.
        """
        data = self.data
        given = {name for name in PRESET_SETTINGS if str(data.get(name) or "").strip()}
        if "size" in data:
            if not data.get("size") and (str(data.get("width")), str(data.get("height"))) == PAGE_SIZE:
                given -= {"width", "height"}
            if str(data.get("model") or "") == _first_model():
                given.discard("model")
        return {PRESET_SETTINGS[name] for name in given}

    def add_error(self, field: str | None, error: Any) -> None:
        if self._preset_problems is not None:  # checking what a preset set: one error, on `preset`
            self._preset_problems.append(str(error))
            return
        super().add_error(field, error)

    def clean_prompt(self) -> str:
        prompt = self.cleaned_data["prompt"].strip()
        if not prompt or all(unicodedata.category(char) in INVISIBLE_CATEGORIES for char in prompt):
            raise forms.ValidationError(gettext("Describe the picture you want."))
        return prompt

    def clean_from_publication(self) -> uuid.UUID | None:
        return usable_publication_id(self.cleaned_data.get("from_publication"))

    def clean(self) -> dict:
        super().clean()
        data = self.cleaned_data
        self._clean_provider_and_model(data)
        self._clean_size(data)
        if data.get("num_images") is None and "num_images" not in self.errors:
            data["num_images"] = 1
        if data.get("random_seed") or data.get("seed") == -1:
            data["seed"] = None
        if (data.get("original_prompt") or "").strip() == data.get("prompt"):
            data["original_prompt"] = ""
        if data.get("preset") and not self.errors:
            self._apply_preset(data, data["preset"])
        return data

    def _apply_preset(self, data: dict, preset: Preset) -> None:
        """The preset applied (prompts.presets.apply_preset), then checked against the model
        like anything typed: a setting the model cannot take is one error on `preset`."""
        applied = apply_preset(self._settings(data), preset, self.explicit_settings())
        if len(applied.prompt) > MAX_PROMPT_LENGTH:
            self.add_error(
                "preset",
                gettext("With this preset the prompt is longer than %(max)s characters: shorten it.")
                % {"max": MAX_PROMPT_LENGTH},
            )
            return
        data.update(
            prompt=applied.prompt,
            negative_prompt=applied.negative_prompt,
            provider=applied.provider,
            model=applied.model,
            size="",
            width=applied.width,
            height=applied.height,
            steps=applied.steps,
            scale=applied.guidance_scale,
        )
        problems: list[str] = []
        self._preset_problems = problems
        try:
            self._clean_provider_and_model(data)
            if not problems:
                self._clean_size(data)
        finally:
            self._preset_problems = None
        if problems:
            self.add_error(
                "preset",
                gettext("The preset “%(name)s” does not suit these settings: %(problems)s")
                % {"name": preset.display_name, "problems": " ".join(problems)},
            )
            return
        self._preset_record = {
            "preset_id": applied.preset_id,
            "preset_name": applied.preset_name,
            "original_prompt": applied.original_prompt,
        }

    def _clean_provider_and_model(self, data: dict) -> None:
        providers = enabled_providers()
        name, model = data.get("provider") or "", data.get("model") or ""
        if ":" in model and not name:  # the page's combined "provider:model" select
            name, model = model.split(":", 1)
        name = name or next(iter(providers), "")
        provider = providers.get(name)
        if provider is None:
            choices = ", ".join(providers) or pgettext("no providers", "none")
            self.add_error(
                "provider",
                gettext("Unknown provider “%(name)s”. Choose one of: %(choices)s.")
                % {"name": name, "choices": choices},
            )
            return
        models = {m.id: m for m in offered_models(name, provider)}
        model = model or next(iter(models), "")
        if model and is_retired(name, model):
            self.add_error("model", str(MESSAGES["model_retired"]))
            return
        if model not in models:
            self.add_error(
                "model",
                gettext("%(provider)s has no model “%(model)s”. Choose one of: %(choices)s.")
                % {"provider": provider.label, "model": model, "choices": ", ".join(models)},
            )
            return
        data["provider"], data["model"] = name, model
        self.model_info = models[model]

    def _clean_size(self, data: dict) -> None:
        width, height = data.get("width"), data.get("height")
        if "width" in self.errors or "height" in self.errors or "size" in self.errors:
            return
        if data.get("size"):  # a preset chosen on the page (the API sends width and height)
            width, height = (int(v) for v in data["size"].split("x"))
        elif width is None and height is None:
            width, height = 1024, 1024
        elif width is None or height is None:
            self.add_error("width" if width is None else "height", gettext("Give both width and height."))
            return
        data["width"], data["height"] = width, height
        model_info = getattr(self, "model_info", None)
        if model_info is None:
            return
        if problem := model_info.size_error(width, height):
            self.add_error("width", problem)
        elif data.get("num_images") and data["num_images"] > model_info.max_images:
            self.add_error(
                "num_images",
                ngettext(
                    "%(model)s makes at most %(count)s image at once.",
                    "%(model)s makes at most %(count)s images at once.",
                    model_info.max_images,
                )
                % {"model": model_info.label, "count": model_info.max_images},
            )
        self._clean_for_model(data, model_info)

    def _clean_for_model(self, data: dict, model_info) -> None:
        """Check what this model accepts; drop what it would silently ignore."""
        seed = data.get("seed")
        if not model_info.supports_seed:
            data["seed"] = None
        elif seed is not None and seed > model_info.max_seed and not data.get("random_seed"):
            self.add_error(
                "seed",
                gettext("%(model)s takes seeds from 0 to %(max)s.")
                % {"model": model_info.label, "max": model_info.max_seed},
            )
        if not model_info.supports_negative_prompt:
            data["negative_prompt"] = ""
        guidance, steps = data.get("scale"), data.get("steps")
        if guidance is not None:
            low, high = model_info.guidance_range or (0, 30)
            if not model_info.supports_guidance:
                data["scale"] = None
            elif not low <= guidance <= high:
                self.add_error("scale", str(guidance_range_error(model_info.label, low, high)))
        if steps is not None:
            low, high = model_info.steps_range or (1, 150)
            if not model_info.supports_steps:
                data["steps"] = None
            elif not low <= steps <= high:
                self.add_error("steps", str(steps_range_error(model_info.label, low, high)))

    def task_settings(self) -> TaskSettings:
        """The validated settings, with the preset applied and recorded when one was chosen."""
        return dataclasses.replace(self._settings(self.cleaned_data), **self._preset_record)

    def _settings(self, data: dict) -> TaskSettings:
        return TaskSettings(
            prompt=data["prompt"],
            negative_prompt=data.get("negative_prompt") or "",
            provider=data["provider"],
            model=data["model"],
            width=data["width"],
            height=data["height"],
            num_images=data["num_images"],
            steps=data.get("steps"),
            guidance_scale=data.get("scale"),
            seed=data.get("seed"),
            from_publication_id=data.get("from_publication"),
            original_prompt=(data.get("original_prompt") or "").strip(),
        )
