"""One place that decides what belongs to whom: every view and API call goes through it.

Another person's object is indistinguishable from one that does not exist (a 404).
"""

from __future__ import annotations

from functools import cache
from typing import TypeVar

from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest

from .lib.prepared import PreparedQuery
from .models import Image

Owned = TypeVar("Owned", bound=Model)


def owned(model: type[Owned], request: HttpRequest) -> QuerySet[Owned]:
    """The signed-in person's rows of `model` (every model here has an `owner`)."""
    return model._default_manager.filter(owner=request.user)


def find_owned(model: type[Owned], request: HttpRequest, pk: object, *, only: tuple[str, ...] = ()) -> Owned | None:
    """The signed-in person's `model` row with this primary key, or None (also for a key that
    is not one, like "abc" for a UUID); `only` its columns read now."""
    return _first_or_none(_owned_by_pk(model, only), request.user.pk, pk)


def get_owned_or_404(model: type[Owned], request: HttpRequest, pk: object) -> Owned:
    found = find_owned(model, request, pk)
    if found is None:
        raise Http404(f"No {model._meta.object_name} matches the given query.")
    return found


@cache
def _owned_by_pk(model: type[Owned], only: tuple[str, ...]) -> PreparedQuery[Owned]:
    # Compiled once: the polled task card, the API's task and every thumbnail ask for one.
    def build(owner_id: object, pk: object) -> QuerySet[Owned]:
        rows = model._default_manager.filter(owner_id=owner_id).filter(pk=pk).order_by()
        return rows.only(*only) if only else rows

    return PreparedQuery(
        model,
        build,
        [model._meta.get_field("owner"), model._meta.pk],  # type: ignore[list-item]  # "owner" is a ForeignKey
    )


@cache
def _image_by_pk(only: tuple[str, ...]) -> PreparedQuery[Image]:
    def build(pk: str) -> QuerySet[Image]:
        rows = Image.objects.filter(pk=pk).order_by()
        return rows.only(*only) if only else rows

    return PreparedQuery(Image, build, [Image._meta.pk])


def _first_or_none(query: PreparedQuery[Owned], *values: object) -> Owned | None:
    try:
        return query.first(*values)
    except ValidationError:  # not a key at all ("abc" for a UUID): no such row
        return None


def viewable_image(request: HttpRequest, pk: object, *, only: tuple[str, ...] = ()) -> Image | None:
    """The image this request may fetch, or None: the owner's, or any for staff allowed to
    view them in the admin (its thumbnails go through the same file view)."""
    # Only staff reach the admin; asking anyone else's permissions would cost two queries a file.
    if request.user.is_staff and request.user.has_perm("generator.view_image"):
        return _first_or_none(_image_by_pk(only), pk)
    return find_owned(Image, request, pk, only=only)
