"""{% sharing_allows "team" as name %}: whether the SHARING switch reaches a level, for templates
that any view renders (the viewer, the gallery's bar, the task page)."""

from __future__ import annotations

from django import template

from sharing.switch import allows

register = template.Library()


@register.simple_tag
def sharing_allows(level: str) -> bool:
    return allows(level)
