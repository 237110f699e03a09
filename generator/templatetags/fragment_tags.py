"""{% script_prefix as prefix %}: what every link starts with, for {% cache %} keys of kept
fragments that hold links (templates/base.html)."""

from __future__ import annotations

from django import template
from django.urls import get_script_prefix

register = template.Library()


@register.simple_tag
def script_prefix() -> str:
    return get_script_prefix()
