"""Publishing one's own images to Explore, and taking them back.

A Publication copies the provider, the model and (when shown) the prompt from the image's task,
so Explore filters and sorts on one table. Publishing again changes only what the author
chose (title, whether the prompt shows): its counts, date and any staff hiding stay.
"""

from __future__ import annotations

import uuid

from django import forms
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from audit import log as audit
from audit.models import Event
from generator.models import Image, Task

from .models import Publication
from .switch import TEAM, allows

MAX_TITLE_LENGTH = Publication._meta.get_field("title").max_length or 120


class PublishForm(forms.Form):
    """What the author chooses: a title (optional) and whether the prompt and settings show.

    An unticked checkbox sends nothing, so a posted form without `show_prompt` keeps the
    prompt private; the form starts ticked (the issue's default)."""

    title = forms.CharField(
        label=_("Title"),
        required=False,
        max_length=MAX_TITLE_LENGTH,
        error_messages={"max_length": _("Keep the title to %(limit_value)d characters or fewer.")},
    )
    show_prompt = forms.BooleanField(label=_("Show the prompt and settings"), required=False, initial=True)

    @classmethod
    def for_image(cls, image: Image) -> PublishForm:
        """The empty form, or the current choices of an image already published."""
        publication = publication_of(image)
        if publication is None:
            return cls()
        return cls(initial={"title": publication.title, "show_prompt": publication.show_prompt})


def publication_of(image: Image) -> Publication | None:
    """The image's publication, or None (uses a select_related("publication") when there is one)."""
    try:
        return image.publication
    except Publication.DoesNotExist:
        return None


def publish(
    image: Image, *, title: str = "", show_prompt: bool = True, request: HttpRequest | None = None
) -> Publication:
    """Publish `image` for its owner, or update the choices of its publication.

    Idempotent: counts, published_at and a staff hiding (hidden_at) are kept as they are.
    Raises ValidationError for a title too long (PublishForm says so before). Audited
    (published; "updated" when it was published already) by whoever `request` is signed in as."""
    title = title.strip()
    if len(title) > MAX_TITLE_LENGTH:
        raise ValidationError(
            _("Keep the title to %(limit_value)d characters or fewer."), params={"limit_value": MAX_TITLE_LENGTH}
        )
    task = image.task
    choices = {
        "owner_id": image.owner_id,
        "title": title,
        "show_prompt": show_prompt,
        "provider": task.provider,
        "model": task.model,
        "prompt": task.prompt if show_prompt else "",
    }
    with transaction.atomic():
        publication, created = Publication.objects.update_or_create(image=image, defaults=choices)
        detail = {"image": str(image.pk), "show_prompt": show_prompt, "updated": not created}
        audit.record(Event.PUBLISHED, request=request, target=publication, detail=detail)
    return publication


def publish_task(
    task: Task, *, title: str = "", show_prompt: bool = True, request: HttpRequest | None = None
) -> list[Publication]:
    """Publish every image of `task` with the same choices (all or none)."""
    with transaction.atomic():
        return [publish(image, title=title, show_prompt=show_prompt, request=request) for image in task.ordered_images]


def publish_new(images: QuerySet[Image], *, request: HttpRequest | None = None) -> int:
    """Publish those of `images` that are not published yet (the gallery's bulk action), with
    the defaults; the ones already published keep their title and choices. Returns how many
    are published now."""
    pending = images.filter(publication__isnull=True).select_related("task")
    for image in pending:
        publish(image, request=request)
    return images.filter(publication__isnull=False).count()


def unpublish(image: Image, *, request: HttpRequest | None = None) -> bool:
    """Take the image off Explore: its publication goes, with its likes, favourites and counts.
    Whether there was one to take back (then audited, unpublished, on the image)."""
    with transaction.atomic():
        deleted, by_model = Publication.objects.filter(image=image).delete()
        if by_model.get(Publication._meta.label, 0):
            audit.record(Event.UNPUBLISHED, request=request, target=image)
    return deleted > 0


def usable() -> QuerySet[Publication]:
    """Publications whose settings anyone signed in may take: visible, prompt shown, sharing on."""
    if not allows(TEAM):
        return Publication.objects.none()
    return Publication.objects.visible().filter(show_prompt=True)


def usable_publication_id(raw: object) -> uuid.UUID | None:
    """The id of a usable publication named by `raw` (a submitted form field), else None:
    a stale or altered value never stops a submission."""
    try:
        publication_id = uuid.UUID(str(raw))
    except ValueError:
        return None
    return usable().filter(pk=publication_id).values_list("pk", flat=True).first()
