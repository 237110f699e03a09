"""One place that decides what belongs to whom: every view and API call goes through it.

Another person's object is indistinguishable from one that does not exist (a 404).
"""

from __future__ import annotations

from typing import TypeVar

from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.shortcuts import get_object_or_404

from .models import Image

Owned = TypeVar("Owned", bound=Model)


def owned(model: type[Owned], request: HttpRequest) -> QuerySet[Owned]:
    """The signed-in person's rows of `model` (every model here has an `owner`)."""
    return model._default_manager.filter(owner=request.user)


def get_owned_or_404(model: type[Owned], request: HttpRequest, pk: object) -> Owned:
    return get_object_or_404(owned(model, request), pk=pk)


def viewable_images(request: HttpRequest) -> QuerySet[Image]:
    """Images this request may fetch: the owner's, or any for staff allowed to view them
    in the admin (its thumbnails go through the same file view)."""
    # Only staff reach the admin; asking anyone else's permissions would cost two queries a file.
    if request.user.is_staff and request.user.has_perm("generator.view_image"):
        return Image.objects.all()
    return owned(Image, request)
