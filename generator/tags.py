"""Tag rules: per person, trimmed, case-insensitively unique, at most 50 characters."""

from __future__ import annotations

import re
import unicodedata

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from .models import Tag

MAX_TAG_LENGTH = 50
_SPACES = re.compile(r"\s+")


def clean_tag_name(raw: object) -> str:
    """The name as stored, or ValidationError with a message a person understands."""
    if not isinstance(raw, str):
        raise ValidationError(_("A tag name must be text."))
    name = _SPACES.sub(" ", raw).strip()
    if not name:
        raise ValidationError(_("Give the tag a name."))
    if len(name) > MAX_TAG_LENGTH:
        raise ValidationError(_("Keep tag names to %(max)s characters or fewer.") % {"max": MAX_TAG_LENGTH})
    if any(unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn") for char in name):
        raise ValidationError(_("Tag names cannot contain control or invisible characters."))
    return name


def find_tag(owner: User, name: str) -> Tag | None:
    return Tag.objects.filter(owner=owner, name__iexact=name).first()


def tag_for(owner: User, raw_name: object) -> Tag:
    """The owner's tag with this name (any case), created if new."""
    name = clean_tag_name(raw_name)
    existing = find_tag(owner, name)
    if existing:
        return existing
    try:
        with transaction.atomic():
            return Tag.objects.create(owner=owner, name=name)
    except IntegrityError:  # created meanwhile by a concurrent request: that one is the tag
        return Tag.objects.get(owner=owner, name__iexact=name)


def rename_tag(tag: Tag, raw_name: object) -> Tag:
    """Rename; a name another of the owner's tags already has is refused, not merged."""
    name = clean_tag_name(raw_name)
    clash = Tag.objects.filter(owner_id=tag.owner_id, name__iexact=name).exclude(pk=tag.pk).exists()
    if clash:
        raise ValidationError(_("You already have a tag called “%(name)s”.") % {"name": name})
    tag.name = name
    tag.save(update_fields=["name"])
    return tag
