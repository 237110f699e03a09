"""{% gallery_tiles rows %}: the gallery's grid tiles, each rendered once for what it shows."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.safestring import SafeString

from sharing.switch import TEAM, allows

from ..lib.fragments import render_each

register = template.Library()

TILE_TEMPLATE = "generator/_gallery_tile.html"


@register.simple_tag
def gallery_tiles(
    rows: list[dict[str, Any]], eager_count: int = 0, checked: bool = False, oob: bool = False
) -> SafeString:
    """One tile per row of generator.views.gallery.grid_rows. The first `eager_count` load their
    picture at once; a bulk action's tiles come `checked` (still selected) and `oob` (swapped
    in place of the grid's)."""
    show_published = allows(TEAM)
    for index, row in enumerate(rows):
        row["eager"] = index < eager_count

    def key_of(row: dict[str, Any]) -> tuple:
        # Everything the tile shows or decides on: another value is another tile.
        return (
            row["owner_id"],
            row["id"],
            row["width"],
            row["height"],
            row["task__prompt"],
            row["is_favorite"],
            row["publication__id"],
            row["publication__hidden_at"] is not None,
            row["publication__like_count"],
            row["eager"],
            checked,
            oob,
            show_published,
        )

    context = {"checked": checked, "oob": oob, "show_published": show_published}
    return render_each(TILE_TEMPLATE, rows, key_of, context)
