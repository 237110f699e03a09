"""The prompt helper for one person's request: PROMPT_LLM_RATE, then helper.improve.

The page refuses a request over the rate (the person sees why, in place); generating through
the API with `optimize_prompt` never loses its task to the helper: over the rate it falls back
to the original prompt like any other failure, and says why.
"""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.translation import gettext

from generator import limits

from .helper import Suggestion, enabled, improve


def admit_helper_call(request: HttpRequest) -> None:
    """Count one call of the helper (Improve, or Surprise me's rewrites) against the person's
    PROMPT_LLM_RATE; limits.RateExceeded over it. A helper that is off costs nothing, so it is
    not counted."""
    if enabled() and (exceeded := limits.prompt_helper_rate_exceeded(request)) is not None:
        raise limits.RateExceeded(exceeded)


def suggestion_for(request: HttpRequest, prompt: str, *, english: bool = False) -> Suggestion:
    """helper.improve for the signed-in person; limits.RateExceeded over PROMPT_LLM_RATE."""
    admit_helper_call(request)
    return improve(prompt, english=english)


def optimized(request: HttpRequest, prompt: str, *, english: bool = False) -> Suggestion:
    """suggestion_for that never raises: over the rate, the original prompt and why."""
    try:
        return suggestion_for(request, prompt, english=english)
    except limits.RateExceeded as refused:
        note = gettext("%(limit)s Your prompt is used as it is.") % {"limit": refused.exceeded.message}
        return Suggestion(prompt.strip(), prompt.strip(), note)
