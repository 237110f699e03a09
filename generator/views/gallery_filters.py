"""The gallery's filters: read from the URL, applied to a person's images.

Pure query building: a GalleryFilters is parsed from a QueryDict and narrows a queryset.
Nothing here renders or redirects; bad values become messages and are ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db.models import Q, QuerySet
from django.http import QueryDict
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from ..models import Image, Tag

FILTER_KEYS = ("q", "tag", "favorites", "provider", "model", "from", "to")
MAX_QUERY_LENGTH = 200
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


@dataclass
class GalleryFilters:
    q: str = ""
    tag: str = ""
    favorites: bool = False
    provider: str = ""
    model: str = ""
    date_from: date | None = None
    date_to: date | None = None
    problems: list[str] = field(default_factory=list)

    @classmethod
    def from_query(cls, query: QueryDict) -> GalleryFilters:
        filters = cls(
            q=_text(query, "q")[:MAX_QUERY_LENGTH],
            tag=" ".join(_text(query, "tag").split()),
            favorites=query.get("favorites") in ("1", "on", "true"),
            provider=_text(query, "provider"),
            model=_text(query, "model"),
        )
        filters.date_from = filters._date(query, "from", pgettext("date", "From"))
        filters.date_to = filters._date(query, "to", pgettext("date", "To"))
        if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
            filters.problems.append(_("The “from” date is after the “to” date, so the date range was ignored."))
            filters.date_from = filters.date_to = None
        return filters

    def _date(self, query: QueryDict, key: str, label: str) -> date | None:
        raw = _text(query, key)
        if not raw:
            return None
        try:
            if not _ISO_DATE.fullmatch(raw):
                raise ValueError(raw)
            return date.fromisoformat(raw)
        except ValueError:
            self.problems.append(
                _("“%(value)s” is not a date (use YYYY-MM-DD), so the “%(label)s” date was ignored.")
                % {"value": raw[:40], "label": label}
            )
            return None

    @property
    def active(self) -> bool:
        return bool(self.as_params())

    def as_params(self) -> dict[str, str]:
        """The filters that apply, as URL parameters (what next-page links and redirects carry)."""
        params = {
            "q": self.q,
            "tag": self.tag,
            "favorites": "1" if self.favorites else "",
            "provider": self.provider,
            "model": self.model,
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
        }
        return {key: value for key, value in params.items() if value}

    def querystring(self, **extra: str) -> str:
        query = QueryDict(mutable=True)
        query.update({**self.as_params(), **extra})
        return query.urlencode()

    def apply(self, images: QuerySet[Image], tag: Tag | None = None) -> QuerySet[Image]:
        """Narrow the images; `tag` is the person's tag named by self.tag (None: no such tag)."""
        if self.q:
            images = images.filter(Q(task__prompt__icontains=self.q) | Q(task__negative_prompt__icontains=self.q))
        if self.tag:
            # A subquery, not a join: SQLite then reads the tag's links once instead of probing
            # them for every image newest-first (1.1 ms against 2.1 ms at 20,000 images).
            tagged = Image.tags.through.objects.filter(tag=tag).values("image_id")
            images = images.filter(pk__in=tagged) if tag is not None else images.none()
        if self.favorites:
            images = images.filter(is_favorite=True)
        if self.provider:
            images = images.filter(task__provider=self.provider)
        if self.model:
            images = images.filter(task__model=self.model)
        if self.date_from:
            images = images.filter(created_at__gte=_start_of(self.date_from))
        if self.date_to:
            images = images.filter(created_at__lt=_start_of(self.date_to + timedelta(days=1)))
        return images


def _text(query: QueryDict, key: str) -> str:
    value = query.get(key, "")
    return value.strip() if isinstance(value, str) else ""


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))
