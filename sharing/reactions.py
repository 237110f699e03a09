"""What people do to a published image: like it, keep it as a favourite, view it, download it.

Each verb writes the row that justifies it (a Like, a Favourite, today's View) and, in the same
transaction, the Publication's counter (an F() update) and the day's PublicationDay bucket, so
the counts stay exact however many people act at once. A second identical act is refused by the
unique constraints, not by a read-then-write, so two requests racing cannot both count.

Popular (Explore's "popular" sort) weighs the last 7 days (today and the 6 before, in the
server's TIME_ZONE):

    popular = 3 × likes + 2 × downloads + 1 × views

summed over the PublicationDay rows of those days. A like bumps the score at once so the sort
feels live; `refresh_popular_scores` (every 10 minutes, and `manage.py refresh_popular`)
recomputes every score from the buckets and drops buckets older than 7 days.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F, IntegerField, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from .models import Favourite, Like, Publication, PublicationDay, View

LIKE_WEIGHT = 3
DOWNLOAD_WEIGHT = 2
VIEW_WEIGHT = 1
POPULAR_DAYS = 7


def today(now: datetime | None = None) -> date:
    """The server's calendar day (TIME_ZONE), whatever language or zone a request runs in."""
    return timezone.localdate(now or timezone.now(), timezone.get_default_timezone())


def _bump(publication: Publication, *, counter: str, by: int, bucket: str, score: int = 0) -> None:
    """Add `by` to the publication's `counter` and to today's `bucket`; the publication must
    still be visible, else Publication.DoesNotExist (the caller's transaction rolls back)."""
    changes: dict[str, Any] = {counter: F(counter) + by}
    if score:
        changes["popular_score"] = Greatest(F("popular_score") + score, Value(0))
    # The publication's row lock comes first in every verb, so concurrent verbs never deadlock.
    if not Publication.objects.visible().filter(pk=publication.pk).update(**changes):
        raise Publication.DoesNotExist
    day = today()
    PublicationDay.objects.bulk_create([PublicationDay(publication_id=publication.pk, day=day)], ignore_conflicts=True)
    PublicationDay.objects.filter(publication_id=publication.pk, day=day).update(**{bucket: F(bucket) + by})


def _insert_once(row: Like | Favourite | View) -> bool:
    """Save `row`; False when its unique constraint says it is there already."""
    try:
        with transaction.atomic():  # a savepoint: the failed INSERT does not spoil the caller's transaction
            row.save(force_insert=True)
    except IntegrityError:
        return False
    return True


def _toggle(
    model: type[Like] | type[Favourite], user: AbstractBaseUser, publication: Publication, wanted: bool | None
) -> tuple[bool, int]:
    """Set (wanted=True), clear (False) or flip (None) the person's row; the change in count."""
    mine = model._default_manager.filter(user_id=user.pk, publication_id=publication.pk)
    if wanted is None:
        wanted = not mine.exists()
    if wanted:
        return wanted, 1 if _insert_once(model(user_id=user.pk, publication_id=publication.pk)) else 0
    deleted, _ = mine.delete()
    return wanted, -1 if deleted else 0


@transaction.atomic
def like(user: AbstractBaseUser, publication: Publication, wanted: bool | None = None) -> bool:
    """Like or unlike (None: the other way round); whether the person likes it now.
    Authors may like their own images. A hidden or unpublished image: Publication.DoesNotExist,
    and nothing changes."""
    _still_visible(publication)
    wanted, change = _toggle(Like, user, publication, wanted)
    if change:
        _bump(publication, counter="like_count", by=change, bucket="likes", score=change * LIKE_WEIGHT)
    return wanted


@transaction.atomic
def favourite(user: AbstractBaseUser, publication: Publication, wanted: bool | None = None) -> bool:
    """Keep in or take out of the person's Favourites (None: the other way round)."""
    _still_visible(publication)
    wanted, change = _toggle(Favourite, user, publication, wanted)
    if change:
        changed = Publication.objects.visible().filter(pk=publication.pk)
        if not changed.update(favourite_count=F("favourite_count") + change):
            raise Publication.DoesNotExist
    return wanted


@transaction.atomic
def record_view(user: AbstractBaseUser, publication: Publication) -> bool:
    """Count the person's view, once per day; whether this one counted."""
    _still_visible(publication)
    if not _insert_once(View(user_id=user.pk, publication_id=publication.pk, day=today())):
        return False
    _bump(publication, counter="view_count", by=1, bucket="views")
    return True


@transaction.atomic
def record_download(publication: Publication) -> None:
    """Count one download of the original (every one counts: no row justifies it)."""
    _bump(publication, counter="download_count", by=1, bucket="downloads")


def _still_visible(publication: Publication) -> None:
    """Refuse before writing a row for an image hidden or unpublished since it was read."""
    if not Publication.objects.visible().filter(pk=publication.pk).exists():
        raise Publication.DoesNotExist


def refresh_popular_scores(now: datetime | None = None) -> int:
    """Recompute every popular_score from the last 7 days of PublicationDay and drop older days;
    how many publications' scores changed."""
    first_day = today(now) - timedelta(days=POPULAR_DAYS - 1)
    with transaction.atomic():
        PublicationDay.objects.filter(day__lt=first_day).delete()
        recent = (
            PublicationDay.objects.filter(publication=OuterRef("pk"), day__gte=first_day)
            .order_by()
            .values("publication")
            .annotate(
                score=Sum(
                    F("likes") * LIKE_WEIGHT + F("downloads") * DOWNLOAD_WEIGHT + F("views") * VIEW_WEIGHT,
                    output_field=IntegerField(),
                )
            )
            .values("score")
        )
        score = Greatest(Coalesce(Subquery(recent, output_field=IntegerField()), Value(0)), Value(0))
        return Publication.objects.annotate(fresh=score).exclude(popular_score=F("fresh")).update(popular_score=score)
