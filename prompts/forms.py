"""The Presets page's form: a person's own style preset."""

from __future__ import annotations

from typing import cast

from django import forms
from django.contrib.auth.models import User
from django.core.validators import MaxLengthValidator
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from generator.forms import MAX_PROMPT_LENGTH, model_choices
from generator.models import Image

from .models import Preset

RECENT_IMAGES = 24  # the preview picker offers the person's latest images


class PresetForm(forms.ModelForm):
    model = forms.ChoiceField(label=_("Default model"), required=False)
    preview = forms.ModelChoiceField(
        queryset=Image.objects.none(),
        required=False,
        label=_("Preview image"),
        error_messages={"invalid_choice": _("Choose one of your own images.")},
    )

    class Meta:
        model = Preset
        fields = ["name", "prompt_template", "negative_prompt", "model", "width", "height", "steps", "guidance_scale"]
        widgets = {
            "prompt_template": forms.Textarea(attrs={"rows": 3}),
            "negative_prompt": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args, owner: User, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.owner = owner
        own_images = Image.objects.filter(owner=owner)
        self.preview_field.queryset = own_images
        self.fields["preview"].initial = self.instance.preview_id
        self.recent_images = list(own_images.select_related("task").order_by("-created_at")[:RECENT_IMAGES])
        current = self.instance.preview
        if current is not None and current.owner_id == owner.pk and current not in self.recent_images:
            self.recent_images.append(current)
        choices: list[tuple[str, str]] = [("", gettext("None: the model chosen on the create page"))]
        for group, options in model_choices():
            choices += [(value, f"{group} · {label}") for value, label, _limits in options]
        if self.instance.model and self.instance.model not in {value for value, _label in choices}:
            choices.append((self.instance.model, self.instance.model))
        cast(forms.ChoiceField, self.fields["model"]).choices = choices
        for name in ("prompt_template", "negative_prompt"):
            self.fields[name].validators.append(MaxLengthValidator(MAX_PROMPT_LENGTH))
        self.fields["prompt_template"].help_text = _(
            "Where {prompt} stands, the prompt typed on the create page goes. Without {prompt}, "
            "the template is added after the prompt."
        )
        self.fields["negative_prompt"].help_text = _(
            "Added after the negative prompt typed on the create page (terms it already has are not repeated)."
        )

    @property
    def preview_field(self) -> forms.ModelChoiceField:
        return cast(forms.ModelChoiceField, self.fields["preview"])

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError(gettext("Give the preset a name."))
        clash = Preset.objects.filter(owner=self.owner, name__iexact=name).exclude(pk=self.instance.pk)
        if clash.exists():
            raise forms.ValidationError(gettext("You already have a preset with this name."))
        return name

    def clean_prompt_template(self) -> str:
        template = self.cleaned_data["prompt_template"].strip()
        if not template:
            raise forms.ValidationError(gettext("Write a template, for example “{prompt}, watercolour”."))
        return template

    def save(self, commit: bool = True) -> Preset:
        preset = super().save(commit=False)
        preset.owner = self.owner
        preset.preview = self.cleaned_data.get("preview")
        if commit:
            preset.save()
        return preset
