"""Explore's query: visible publications, sorted, filtered and cut into keyset pages.

Every sort ends in (published_at, id), so no two rows tie and a page starts exactly after the
last row of the one before (no OFFSET: a deep page costs what the first does). The cursor is
signed: anything not given out here reads as "no cursor" (the first page), never an error.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.core.cache import cache
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.utils.html import format_html
from django.utils.translation import gettext, pgettext
from django.utils.translation import gettext_lazy as _

from generator.lib.keyset import Page

from .models import Favourite, Like, Publication

PAGE_SIZE = 48  # as the gallery's
MAX_QUERY_LENGTH = 200
MAX_WORDS = 10
MAX_TOKEN_LENGTH = 400
MODEL_CHOICES_SECONDS = 60

# Sort name -> (label, the fields it orders by, all descending; each ends in published_at, id).
SORTS: dict[str, tuple[Any, tuple[str, ...]]] = {
    "latest": (_("Latest"), ("published_at", "id")),
    "liked": (_("Most liked"), ("like_count", "published_at", "id")),
    "popular": (_("Popular"), ("popular_score", "published_at", "id")),
}
DEFAULT_SORT = "latest"

_SALT = "sharing.explore.cursor"


@dataclass
class ExploreFilters:
    """What the person asked for in the query string, read leniently: an unknown sort is
    the default, an unknown model matches nothing."""

    sort: str = DEFAULT_SORT
    model: str = ""
    q: str = ""

    @classmethod
    def from_query(cls, query: Any) -> ExploreFilters:
        sort = query.get("sort", "")
        q = " ".join(str(query.get("q", "")).split())[:MAX_QUERY_LENGTH]
        return cls(sort=sort if sort in SORTS else DEFAULT_SORT, model=str(query.get("model", ""))[:200], q=q)

    @property
    def active(self) -> bool:
        return bool(self.model or self.q)

    @property
    def words(self) -> list[str]:
        return self.q.split()[:MAX_WORDS]

    def querystring(self, **extra: str) -> str:
        from django.http import QueryDict

        query = QueryDict(mutable=True)
        wanted = {"sort": self.sort if self.sort != DEFAULT_SORT else "", "model": self.model, "q": self.q, **extra}
        query.update({key: value for key, value in wanted.items() if value})
        return query.urlencode()

    def apply(self, rows: QuerySet[Publication]) -> QuerySet[Publication]:
        if self.model:
            provider, _sep, model = self.model.partition(":")
            rows = rows.filter(provider=provider, model=model)
        for word in self.words:
            # The prompt is "" when the author keeps it to themselves: then only the title matches.
            rows = rows.filter(Q(title__icontains=word) | Q(show_prompt=True, prompt__icontains=word))
        return rows


def for_viewer(rows: QuerySet[Publication], viewer: AbstractBaseUser) -> QuerySet[Publication]:
    """The rows with their author and image, and whether `viewer` likes and keeps each one
    (in the same query)."""
    return rows.select_related("owner", "image").annotate(
        viewer_likes=Exists(Like.objects.filter(publication=OuterRef("pk"), user_id=viewer.pk)),
        viewer_favourites=Exists(Favourite.objects.filter(publication=OuterRef("pk"), user_id=viewer.pk)),
    )


def explore_page(
    viewer: AbstractBaseUser, filters: ExploreFilters, token: str | None, *, size: int = PAGE_SIZE
) -> Page[Publication]:
    """One page of Explore: visible publications in the filters' sort, after `token`."""
    fields = SORTS[filters.sort][1]
    rows = for_viewer(filters.apply(Publication.objects.visible()), viewer)
    return cut(rows, fields, token, kind=filters.sort, size=size)


# What an Explore tile shows (sharing/_explore_tile.html) and every sort's cursor reads, as
# plain rows: making a publication, its author and its image of each of 48 rows cost a fifth
# of the page.
TILE_FIELDS = (
    "id",
    "title",
    "like_count",
    "published_at",
    "popular_score",
    "image__width",
    "image__height",
    "owner__username",
    "viewer_likes",
    "viewer_favourites",
)


def tile_page(viewer: AbstractBaseUser, filters: ExploreFilters, token: str | None) -> Page[dict[str, Any]]:
    """explore_page as the tiles' rows: dicts of TILE_FIELDS ({% explore_tiles %} renders them)."""
    rows = for_viewer(filters.apply(Publication.objects.visible()), viewer).values(*TILE_FIELDS)
    return cut(rows, SORTS[filters.sort][1], token, kind=filters.sort)


def tile_row(publication: Publication) -> dict[str, Any]:
    """A publication annotated by for_viewer as a tile's row, the same as tile_page's."""
    return {
        "id": publication.pk,
        "title": publication.title,
        "like_count": publication.like_count,
        "image__width": publication.image.width,
        "image__height": publication.image.height,
        "owner__username": publication.owner.get_username(),
        "viewer_likes": publication.viewer_likes,  # type: ignore[attr-defined]
        "viewer_favourites": publication.viewer_favourites,  # type: ignore[attr-defined]
    }


def cut(
    rows: QuerySet[Any], fields: tuple[str, ...], token: str | None, *, kind: str, size: int = PAGE_SIZE
) -> Page[Any]:
    """The `size` rows after the cursor in `token`, ordered by `fields` descending; `kind`
    names the order, so a cursor of one order is no cursor in another."""
    values = decode_cursor(token or "", kind, fields)
    ordered = rows.order_by(*(f"-{name}" for name in fields))
    found = list(after(ordered, fields, values)[: size + 1])
    shown = found[:size]
    return Page(
        rows=shown,
        next_cursor=encode_cursor(shown[-1], kind, fields) if len(found) > size else None,
        is_first=values is None,
        bad_cursor=bool(token) and values is None,
    )


def after(rows: QuerySet[Any], fields: tuple[str, ...], values: list[Any] | None) -> QuerySet[Any]:
    """The rows strictly after `values` in (fields…) descending order."""
    if values is None:
        return rows
    later = Q()
    for index, name in enumerate(fields):
        same = {earlier: values[position] for position, earlier in enumerate(fields[:index])}
        later |= Q(**same, **{f"{name}__lt": values[index]})
    # The leading `<=` lets the database start the sort's index at the cursor.
    return rows.filter(**{f"{fields[0]}__lte": values[0]}).filter(later)


def encode_cursor(row: Any, kind: str, fields: tuple[str, ...]) -> str:
    values = []
    for name in fields:
        value = row[name] if isinstance(row, dict) else getattr(row, name)
        values.append(
            value.isoformat() if isinstance(value, datetime) else str(value) if isinstance(value, uuid.UUID) else value
        )
    return signing.dumps([kind, *values], salt=_SALT, compress=True)


def decode_cursor(token: str, kind: str, fields: tuple[str, ...]) -> list[Any] | None:
    """The position a token names in the order `kind`, or None for anything else."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    try:
        raw = signing.loads(token, salt=_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(raw, list) or len(raw) != len(fields) + 1 or raw[0] != kind:
        return None
    values: list[Any] = []
    try:
        for name, value in zip(fields, raw[1:], strict=True):
            if name == "id":
                values.append(
                    value if isinstance(value, int) and not isinstance(value, bool) else uuid.UUID(str(value))
                )
            elif name.endswith("_at"):
                moment = datetime.fromisoformat(value)
                if moment.tzinfo is None:
                    return None
                values.append(moment)
            elif isinstance(value, int) and not isinstance(value, bool):
                values.append(value)
            else:
                return None
    except (TypeError, ValueError):
        return None
    return values


def reacting(request: HttpRequest, next_url: str = "") -> dict[str, Any]:
    """What every like and favourite form of a page shares (sharing/_like_button.html,
    _favourite_button.html), worked out once and not once a form: a page has 96 of them.
    Without JavaScript a form posts, then comes back to `next_url` (by default this page)."""
    return {
        "csrf_input": format_html('<input type="hidden" name="csrfmiddlewaretoken" value="{}">', get_token(request)),
        "next": next_url or request.get_full_path(),
        "like": pgettext("verb", "Like"),
        "unlike": gettext("Unlike"),
        "likes": gettext("Likes"),
        "favourite": pgettext("verb", "Favourite"),
        "in_favourites": gettext("In favourites"),
    }


def model_choices() -> list[str]:
    """The "provider:model" pairs of visible publications, for the filter (kept a minute)."""
    choices = cache.get("explore-model-choices")
    if choices is None:
        pairs = Publication.objects.visible().order_by().values_list("provider", "model").distinct()
        choices = sorted(f"{provider}:{model}" for provider, model in pairs)
        cache.set("explore-model-choices", choices, timeout=MODEL_CHOICES_SECONDS)
    return choices
