"""The create form's "Variants" part: which presets, or how many rewrites ("Surprise me")."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .models import Preset, VariantSet

SIZES = [(n, str(n)) for n in range(VariantSet.MIN_SIZE, VariantSet.MAX_SIZE + 1)]


class VariantsForm(forms.Form):
    """`variant_mode` presets: the same prompt under each checked preset (2 to 6 of the
    person's usable ones); rewrites: `variant_count` rewrites by the prompt helper."""

    variant_mode = forms.ChoiceField(
        label=gettext_lazy("Variants"),
        choices=VariantSet.Mode.choices,
        initial=VariantSet.Mode.PRESETS,
        error_messages={"required": gettext_lazy("Choose presets or “Surprise me”.")},
    )
    variant_presets = forms.ModelMultipleChoiceField(
        label=gettext_lazy("Presets"), queryset=Preset.objects.none(), required=False
    )
    variant_count = forms.TypedChoiceField(
        label=gettext_lazy("How many"), choices=SIZES, coerce=int, required=False, initial=4
    )

    def __init__(self, *args: Any, user: object, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["variant_presets"]
        assert isinstance(field, forms.ModelMultipleChoiceField)
        field.queryset = Preset.objects.usable_by(user)
        field.error_messages["invalid_choice"] = _("One of the chosen presets no longer exists. Choose again.")
        self.fields["variant_count"].error_messages["invalid_choice"] = self.size_message()

    @staticmethod
    def size_message() -> str:
        return _("Choose %(min)s to %(max)s variants.") % {"min": VariantSet.MIN_SIZE, "max": VariantSet.MAX_SIZE}

    def clean(self) -> dict:
        data = super().clean() or {}
        mode = data.get("variant_mode")
        if mode == VariantSet.Mode.PRESETS:
            chosen = list(data.get("variant_presets") or [])
            if not VariantSet.MIN_SIZE <= len(chosen) <= VariantSet.MAX_SIZE:
                raise forms.ValidationError(
                    _("Choose %(min)s to %(max)s presets for the variants (you chose %(count)s).")
                    % {"min": VariantSet.MIN_SIZE, "max": VariantSet.MAX_SIZE, "count": len(chosen)}
                )
            data["variant_presets"] = chosen
        elif mode == VariantSet.Mode.REWRITES and not data.get("variant_count"):
            raise forms.ValidationError(self.size_message())
        return data

    @property
    def chosen_presets(self) -> list[Preset]:
        if self.cleaned_data["variant_mode"] != VariantSet.Mode.PRESETS:
            return []
        return self.cleaned_data["variant_presets"]

    @property
    def rewrites(self) -> int:
        if self.cleaned_data["variant_mode"] != VariantSet.Mode.REWRITES:
            return 0
        return self.cleaned_data["variant_count"]

    def problem(self) -> str:
        """All that is wrong, as one line for the box by the button."""
        return " ".join(str(message) for messages in self.errors.values() for message in messages)
