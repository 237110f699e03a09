"""The SHARING site switch: which of sharing's pages exist at all.

off: none (every sharing URL is a 404, as if it did not exist); team: Explore, publishing,
likes and favourites for signed-in people; public: those and share links anyone may open.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import Http404

TEAM = "team"
PUBLIC = "public"
_LEVELS = {"off": 0, TEAM: 1, PUBLIC: 2}


def allows(level: str) -> bool:
    """Whether the site's SHARING setting reaches `level` (team or public)."""
    return _LEVELS[settings.SHARING] >= _LEVELS[level]


def sharing_required(level: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A view that answers 404 unless SHARING reaches `level` (read per request, so tests and
    a changed setting apply at once)."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapped(request: Any, *args: Any, **kwargs: Any) -> Any:
            if not allows(level):
                raise Http404
            return view(request, *args, **kwargs)

        return wrapped

    return decorate
