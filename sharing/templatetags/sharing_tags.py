"""Template tags for pages outside the sharing app (the navigation, the viewer, the gallery's bar,
the task and account pages)."""

from __future__ import annotations

from django import template

from ..switch import allows

register = template.Library()


@register.simple_tag
def sharing_allows(level: str) -> bool:
    """{% sharing_allows "team" as explore_on %}: whether the SHARING switch reaches `level`."""
    return allows(level)
