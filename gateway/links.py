"""Signed, expiring links to an image's original, for `response_format: url`.

A chat server fetches the picture itself, with no session and (usually) not the person's token,
so the link carries its own permission: the image's id, signed with SECRET_KEY and a salt of its
own (django.core.signing), valid for OPENAI_COMPAT_URL_SECONDS from when it was made. Changing
any character of it (another image's id included) breaks the signature.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core import signing
from django.http import HttpRequest
from django.urls import reverse

SALT = "gateway.image-link"


def image_link(request: HttpRequest, image_id: uuid.UUID) -> str:
    """The absolute link to the image's original (as the client reached this server)."""
    token = signing.dumps(str(image_id), salt=SALT, compress=False)
    return request.build_absolute_uri(reverse("gateway:image_file", args=[token]))


def image_id_of(token: str) -> str | None:
    """The image id a link names, or None when it expired, was altered or was never ours."""
    try:
        value = signing.loads(token, salt=SALT, max_age=settings.OPENAI_COMPAT_URL_SECONDS)
    except signing.BadSignature:  # SignatureExpired included
        return None
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None
