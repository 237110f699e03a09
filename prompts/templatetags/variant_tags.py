"""The create form's "Variants" part (prompts/_variants.html): the person's usable presets and
what they chose when the form comes again."""

from __future__ import annotations

from django import template

from ..models import VariantSet

register = template.Library()


@register.inclusion_tag("prompts/_variants_picker.html", takes_context=True)
def variants_picker(context: template.Context) -> dict:
    # The generate form's own presets: the picker above has read them already (no second query).
    form = context.get("form")
    presets = list(form.usable_presets) if form is not None else []
    chosen = context.get("variants_form")
    data = chosen.data if chosen is not None and chosen.is_bound else {}
    default_mode = VariantSet.Mode.PRESETS if presets else VariantSet.Mode.REWRITES
    return {
        "presets": presets,
        "mode": data.get("variant_mode") or default_mode,
        "chosen_ids": set(data.getlist("variant_presets")) if hasattr(data, "getlist") else set(),
        "count": str(data.get("variant_count") or 4),
        "sizes": [str(n) for n in range(VariantSet.MIN_SIZE, VariantSet.MAX_SIZE + 1)],
        "is_open": chosen is not None,
        "min": VariantSet.MIN_SIZE,
        "max": VariantSet.MAX_SIZE,
    }
