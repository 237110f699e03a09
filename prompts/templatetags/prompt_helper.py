from __future__ import annotations

from django import template

from prompts import helper

register = template.Library()


@register.simple_tag
def prompt_helper_enabled() -> bool:
    """Whether the prompt helper is set up (PROMPT_LLM_BASE_URL and PROMPT_LLM_MODEL)."""
    return helper.enabled()
