"""Rendered fragments kept by what they show: a grid tile is rendered once, then reused.

A fragment's key is built from everything it shows (the caller's `key_of`), plus the
template, the language and the script prefix: a favourite, a like, a publish or a rename
gives a new key, so an entry is never stale and nothing has to be deleted. Values that
differ per request (the CSRF token, the page to come back to) are not in the cached HTML:
the template writes a `placeholder()` and `render_each` or `render_kept` puts the request's
value, escaped, in its place.

The entries live in the "fragments" cache (tiles) and the "fragment-runs" cache (a page's run
of tiles), each a LocMemCache per process: a content address means the same HTML in every
process, so they need not share one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.core.cache import caches
from django.template.loader import get_template
from django.urls import get_script_prefix
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language

CACHE_ALIAS = "fragments"
# Whole runs of tiles (a page's), kept apart: one is some 50-90 kB where a tile is 1-2 kB, and
# a LocMemCache bounds entries, not bytes, so this one holds few.
RUNS_CACHE_ALIAS = "fragment-runs"
# A day: the keys never go stale, this only frees the memory of tiles nobody looks at.
TIMEOUT_SECONDS = 24 * 3600


def placeholder(name: str) -> SafeString:
    """Where a kept fragment takes a value of the request: a comment, which no escaped text can form."""
    return mark_safe(f"<!--atelier:{name}-->")


def render_each(
    template_name: str,
    rows: Iterable[Any],
    key_of: Callable[[Any], tuple],
    context: Mapping[str, Any],
    *,
    placeholders: Mapping[SafeString, str] | None = None,
    prepare: Callable[[Any], None] | None = None,
) -> SafeString:
    """`template_name` rendered once per row (the row is `row` in it, beside `context`),
    concatenated; a row whose key was rendered before is not rendered again. `placeholders`
    maps each per-request marker in the HTML to this request's value (escaped unless safe);
    `prepare(row)` adds what only the rendering needs (links, say), for rendered rows only.

    The whole run of tiles is kept too, under the keys of all its rows: a page seen again
    costs one cache read, and a page with one changed tile reads the others one by one."""
    rows = list(rows)
    prefix = f"{template_name}|{get_language()}|{get_script_prefix()}|"
    row_keys = [repr(key_of(row)) for row in rows]
    runs = caches[RUNS_CACHE_ALIAS]
    run_key = _digest(prefix + "\n".join(row_keys))
    html = runs.get(run_key)
    if html is None:
        html = _render_rows(template_name, rows, [_digest(prefix + key) for key in row_keys], context, prepare)
        runs.set(run_key, html, timeout=TIMEOUT_SECONDS)
    return _filled(html, placeholders or {})


def render_kept(
    template_name: str,
    key: tuple,
    context: Mapping[str, Any],
    *,
    placeholders: Mapping[SafeString, str],
) -> SafeString:
    """One fragment (not a run of rows): `template_name` with `context`, rendered once for
    `key` (everything it shows), with each placeholder replaced by this request's value.
    The template is rendered without the request: what it needs from it is a placeholder."""
    cache = caches[CACHE_ALIAS]
    cache_key = _digest(f"{template_name}|{get_language()}|{get_script_prefix()}|{key!r}")
    html = cache.get(cache_key)
    if html is None:
        html = get_template(template_name).render(dict(context))
        cache.set(cache_key, html, timeout=TIMEOUT_SECONDS)
    return _filled(html, placeholders)


def _filled(html: str, placeholders: Mapping[SafeString, str]) -> SafeString:
    for marker, value in placeholders.items():
        html = html.replace(marker, conditional_escape(value))
    return mark_safe(html)  # noqa: S308 - rendered by our templates, autoescaped there; values escaped above


def _render_rows(
    template_name: str,
    rows: list[Any],
    keys: list[str],
    context: Mapping[str, Any],
    prepare: Callable[[Any], None] | None,
) -> str:
    """The rows' HTML, each row's from the cache when it was rendered before."""
    cache = caches[CACHE_ALIAS]
    found = cache.get_many(keys)
    missing: dict[str, str] = {}
    if len(found) < len(keys):
        template = get_template(template_name)
        for row, key in zip(rows, keys, strict=True):
            if key not in found and key not in missing:
                if prepare is not None:
                    prepare(row)
                missing[key] = template.render({**context, "row": row})
        cache.set_many(missing, timeout=TIMEOUT_SECONDS)
    return "".join(found[key] if key in found else missing[key] for key in keys)


def _digest(text: str) -> str:
    # Short keys of safe characters (LocMemCache warns past 250), the same for the same tile.
    return hashlib.blake2b(text.encode(), digest_size=20).hexdigest()
