"""{% gallery_tiles rows %}: the gallery's grid tiles, each rendered once for what it shows; and
the options of the person's tags, joined here rather than looped in the template (a person
with 40 tags made the page's template render 240 nodes for them)."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from sharing.switch import TEAM, allows

from ..lib.fragments import render_each
from ..models import image_url

register = template.Library()

TILE_TEMPLATE = "generator/_gallery_tile.html"
SELECTED = {True: mark_safe(" selected"), False: ""}


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
    return render_each(TILE_TEMPLATE, rows, key_of, context, prepare=_with_links)


def _with_links(row: dict[str, Any]) -> None:
    """What a tile links to: only worked out for a tile being rendered, not a kept one."""
    pk = row["id"]
    row["url"] = image_url("api:image_file", pk)
    row["thumbnail_url"] = image_url("api:image_thumbnail", pk)
    row["detail_url"] = image_url("generator:image_detail", pk)


@register.simple_tag
def tag_options(names: list[str], selected: str = "") -> SafeString:
    """<option>s of the tag names, the one named `selected` (any case) selected."""
    chosen = selected.lower()
    return mark_safe(  # noqa: S308 - every name escaped here
        "".join(
            f'<option value="{escaped}"{SELECTED[name.lower() == chosen]}>{escaped}</option>'
            for name, escaped in ((name, escape(name)) for name in names)
        )
    )
