"""Make, find and revoke share links: a secret URL that shows one image or an album to anyone
holding it, without an account (SHARING=public only).

Like API tokens (accounts.tokens), only the sha256 of a link's secret is stored, with a short
display prefix; the URL carrying the plaintext is shown to its owner once. Nothing here logs a
secret: log lines name the link's id and prefix.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from accounts.tokens import digest
from audit import log as audit
from audit.models import Event
from generator.models import Image

from .models import SharedImage, ShareLink

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "shr_"
SECRET_BYTES = 32
# "shr_" + secrets.token_urlsafe(32): 43 characters from the url-safe base64 alphabet.
TOKEN_PATTERN = re.compile(r"shr_[A-Za-z0-9_-]{43}")
DISPLAY_CHARS = 4
# What the form offers: never, or a number of days.
EXPIRY_DAYS = (1, 7, 30)


@dataclass(frozen=True)
class NewLink:
    """A link just made: `plaintext` (the secret in its URL) goes to its owner once, then is forgotten."""

    link: ShareLink
    plaintext: str


class TooManyImages(ValueError):
    """More images than a link may hold (ShareLink.MAX_IMAGES)."""


def create_link(
    owner: User,
    images: Iterable[Image],
    *,
    title: str = "",
    show_prompt: bool = True,
    expires_in_days: int | None,
    request: HttpRequest | None = None,
) -> NewLink:
    """A new link to `images` (the owner's own, in this order; repeats count once) that stops
    working `expires_in_days` from now (None: when revoked). Audited (share_link_created) by
    whoever `request` is signed in as: never with the secret or its URL."""
    unique = list({image.pk: image for image in images}.values())
    if not unique:
        raise ValueError("a share link needs at least one image")
    if len(unique) > ShareLink.MAX_IMAGES:
        raise TooManyImages(f"at most {ShareLink.MAX_IMAGES} images")
    if any(image.owner_id != owner.pk for image in unique):
        raise ValueError("a share link holds only its owner's images")
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(SECRET_BYTES)
    expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
    with transaction.atomic():
        link = ShareLink.objects.create(
            owner=owner,
            title=title,
            show_prompt=show_prompt,
            prefix=plaintext[: len(TOKEN_PREFIX) + DISPLAY_CHARS],
            digest=digest(plaintext),
            expires_at=expires_at,
        )
        SharedImage.objects.bulk_create(
            SharedImage(link=link, image=image, position=position) for position, image in enumerate(unique, start=1)
        )
        detail = {"images": len(unique), "show_prompt": show_prompt, "expires_in_days": expires_in_days}
        audit.record(Event.SHARE_LINK_CREATED, request=request, actor=owner, target=link, detail=detail)
    logger.info("Share link %s (%s…) made by user %s for %s images", link.pk, link.prefix, owner.pk, len(unique))
    return NewLink(link=link, plaintext=plaintext)


def find_active(token: str) -> ShareLink | None:
    """The working link whose secret this is (not revoked, not expired, its owner's account
    active), in one query on the unique digest; None otherwise, without a query when the token
    cannot be one of ours."""
    if not TOKEN_PATTERN.fullmatch(token):
        return None
    unexpired = Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
    return (
        ShareLink.objects.filter(unexpired, digest=digest(token), revoked_at__isnull=True, owner__is_active=True)
        .only("id", "title", "show_prompt", "expires_at", "revoked_at", "created_at", "prefix", "owner_id")
        .first()
    )


def entries(link: ShareLink) -> list[SharedImage]:
    """The link's images still there, in order, with their tasks (for the prompt)."""
    return list(link.entries.select_related("image__task").order_by("position"))


def entry_at(link: ShareLink, position: int) -> SharedImage | None:
    return link.entries.select_related("image").filter(position=position).first()


def revoke(link: ShareLink, *, request: HttpRequest | None = None) -> bool:
    """Revoke `link` (False: it was revoked already). Audited (share_link_revoked) by whoever
    `request` is signed in as: the owner, or staff in the admin."""
    revoked = link.revoke()
    if revoked:
        logger.info("Share link %s (%s…) of user %s revoked", link.pk, link.prefix, link.owner_id)
        audit.record(Event.SHARE_LINK_REVOKED, request=request, target=link, detail={"owner_id": link.owner_id})
    return revoked


# The list page shows a new link's URL once, after the redirect that follows its making: it
# waits in the person's session (server-side) under this key, at most this long.
SHOWN_ONCE_KEY = "sharing:new-share-link"
SHOWN_ONCE_SECONDS = 300


def show_once(request: HttpRequest, new: NewLink) -> None:
    request.session[SHOWN_ONCE_KEY] = {
        "id": str(new.link.pk),
        "plaintext": new.plaintext,
        "until": time.time() + SHOWN_ONCE_SECONDS,
    }


def take_shown_once(request: HttpRequest) -> NewLink | None:
    """The link show_once() left for this person, removed from the session; None if there is
    none, it is too old, or the link was revoked meanwhile."""
    waiting = request.session.pop(SHOWN_ONCE_KEY, None)
    if not isinstance(waiting, dict) or not time.time() < waiting.get("until", 0):
        return None
    link = ShareLink.objects.filter(
        pk=str(waiting.get("id", "")), owner_id=request.user.pk, revoked_at__isnull=True
    ).first()
    if link is None or digest(str(waiting.get("plaintext", ""))) != link.digest:
        return None
    return NewLink(link=link, plaintext=waiting["plaintext"])
