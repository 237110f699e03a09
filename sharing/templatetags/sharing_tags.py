"""Template tags for pages outside the sharing app (the navigation, the viewer, the gallery's bar,
the task and account pages), and Explore's tiles."""

from __future__ import annotations

from typing import Any

from django import template
from django.contrib.auth.models import AnonymousUser
from django.utils.safestring import SafeString

from generator.lib.fragments import placeholder, render_each
from generator.models import image_url

from ..switch import allows

register = template.Library()

TILE_TEMPLATE = "sharing/_explore_tile.html"
# Where the request's own values go in a kept tile.
CSRF_MARKER = placeholder("csrf")
NEXT_MARKER = placeholder("next")


@register.simple_tag
def sharing_allows(level: str) -> bool:
    """{% sharing_allows "team" as explore_on %}: whether the SHARING switch reaches `level`."""
    return allows(level)


@register.simple_tag(takes_context=True)
def explore_tiles(
    context: template.Context, rows: list[dict[str, Any]], reacting: dict[str, Any], eager_count: int = 0
) -> SafeString:
    """One tile per row of sharing.explore.tile_page (or tile_row); the first `eager_count`
    load their picture at once. `reacting` is sharing.explore.reacting."""
    viewer = context.get("user") or AnonymousUser()
    for index, row in enumerate(rows):
        row["eager"] = index < eager_count

    def key_of(row: dict[str, Any]) -> tuple:
        # Everything the tile shows, and whose it is: "liked by you" is the viewer's alone.
        return (
            viewer.pk,
            row["id"],
            row["image__width"],
            row["image__height"],
            row["title"],
            row["owner__username"],
            row["like_count"],
            row["viewer_likes"],
            row["viewer_favourites"],
            row["eager"],
        )

    kept_reacting = {**reacting, "csrf_input": CSRF_MARKER, "next": NEXT_MARKER}
    placeholders = {CSRF_MARKER: reacting["csrf_input"], NEXT_MARKER: reacting["next"]}
    return render_each(
        TILE_TEMPLATE, rows, key_of, {"reacting": kept_reacting}, placeholders=placeholders, prepare=_with_links
    )


def _with_links(row: dict[str, Any]) -> None:
    """The links of a tile and its like and favourite forms: only for a tile being rendered."""
    pk = row["id"]
    row["page_url"] = image_url("sharing:publication", pk)
    row["thumbnail_url"] = image_url("sharing:publication_thumbnail", pk)
    row["like_url"] = image_url("sharing:like", pk)
    row["favourite_url"] = image_url("sharing:favourite", pk)
