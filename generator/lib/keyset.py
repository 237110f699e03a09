"""Keyset pages, newest first: a page is cut after the (created_at, id) of its last row.

The cursor travels in the URL as an opaque token; anything that is not one of ours reads as
"no cursor" (the first page), never an error. Constant cost however deep the page.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from django.db.models import Q, QuerySet

MAX_TOKEN_LENGTH = 200

Row = TypeVar("Row")  # a model instance, or a dict of .values()


def encode_cursor(row: Any) -> str:
    """The token for the position after `row`: any of our rows with a created_at and a pk,
    or a row of .values() with "created_at" and "id"."""
    created_at, pk = (row["created_at"], row["id"]) if isinstance(row, dict) else (row.created_at, row.pk)
    raw = f"{created_at.isoformat()}|{pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[datetime, uuid.UUID] | None:
    """The position a token names, or None for anything that is not a valid token."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        when, _, pk = raw.partition("|")
        created_at = datetime.fromisoformat(when)
        if created_at.tzinfo is None:
            return None
        # The query compares in UTC: a time at the edge of the range (year 1 east of UTC)
        # cannot be converted, so it is no position of ours either.
        return created_at.astimezone(UTC), uuid.UUID(pk)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, OverflowError):
        return None


def after(rows: QuerySet[Any, Row], cursor: tuple[datetime, uuid.UUID] | None) -> QuerySet[Any, Row]:
    """The rows that come after the cursor in (-created_at, -id) order."""
    if cursor is None:
        return rows
    created_at, pk = cursor
    # The same rows as `created_at < c OR (created_at = c AND pk < p)`, written so the database
    # can start the (owner, -created_at, -id) index at the cursor: with the OR alone SQLite
    # walks the index from the newest row, and a deep page costs as much as the rows before it.
    return rows.filter(created_at__lte=created_at).filter(Q(created_at__lt=created_at) | Q(pk__lt=pk))


@dataclass
class Page(Generic[Row]):
    """One keyset page: its rows, the token for the next one, and how the asked-for token read."""

    rows: list[Row]
    next_cursor: str | None
    is_first: bool  # no cursor, or one that was not ours: the newest rows
    bad_cursor: bool  # a token was given that is not one Atelier gave out


def cut_page(rows: QuerySet[Any, Row], token: str | None, size: int) -> Page[Row]:
    """The `size` rows after the cursor in `token`, newest first (a bad token: the first page)."""
    cursor = decode_cursor(token or "")
    # One row more than the page tells whether there is a next page, without a COUNT.
    found = list(after(rows.order_by("-created_at", "-pk"), cursor)[: size + 1])
    shown = found[:size]
    return Page(
        rows=shown,
        next_cursor=encode_cursor(shown[-1]) if len(found) > size else None,
        is_first=cursor is None,
        bad_cursor=bool(token) and cursor is None,
    )
