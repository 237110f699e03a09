"""What people show each other: published images (Explore), their likes, favourites, views and
downloads, and share links that anyone holding them can open.

The counts on Publication are kept exact by F() updates in the same transaction as the row that
justifies them (a Like, a Favourite, a View for the day); PublicationDay holds the same events by
day so "popular" can weigh the last 7 days only (see Publication.popular_score).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from generator.models import Image, image_url


class PublicationQuerySet(models.QuerySet["Publication"]):
    def visible(self) -> PublicationQuerySet:
        """What Explore shows: published and not hidden by staff."""
        return self.filter(hidden_at__isnull=True)


class Publication(models.Model):
    """One image its owner showed to everyone signed in. Deleting the image deletes this."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    image = models.OneToOneField(Image, on_delete=models.CASCADE, related_name="publication", verbose_name=_("image"))
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="publications", verbose_name=_("author")
    )
    title = models.CharField(_("title"), max_length=120, blank=True, default="")
    show_prompt = models.BooleanField(_("show the prompt and settings"), default=True)
    # Copied from the task when published, so Explore filters and sorts on one table:
    # `prompt` is "" when the author keeps the prompt to themselves.
    provider = models.CharField(_("provider"), max_length=64)
    model = models.CharField(_("model"), max_length=128)
    prompt = models.TextField(_("shown prompt"), blank=True, default="")
    published_at = models.DateTimeField(_("published"), default=timezone.now, editable=False)
    hidden_at = models.DateTimeField(_("hidden"), null=True, blank=True, editable=False)
    hidden_reason = models.CharField(_("reason for hiding"), max_length=300, blank=True, default="")
    hidden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        verbose_name=_("hidden by"),
    )
    like_count = models.PositiveIntegerField(_("likes"), default=0, editable=False)
    favourite_count = models.PositiveIntegerField(_("favourites"), default=0, editable=False)
    view_count = models.PositiveIntegerField(_("views"), default=0, editable=False)
    download_count = models.PositiveIntegerField(_("downloads"), default=0, editable=False)
    # Refreshed from PublicationDay (the last 7 days) by a schedule; see sharing docs.
    popular_score = models.PositiveIntegerField(_("popularity"), default=0, editable=False)

    objects = PublicationQuerySet.as_manager()

    class Meta:
        verbose_name = _("published image")
        verbose_name_plural = _("published images")
        ordering = ["-published_at", "-id"]
        indexes = [
            # Explore's three sorts, each with the id as its tie-break (keyset pages).
            models.Index(fields=["-published_at", "-id"], condition=Q(hidden_at__isnull=True), name="pub_latest"),
            models.Index(
                fields=["-like_count", "-published_at", "-id"], condition=Q(hidden_at__isnull=True), name="pub_liked"
            ),
            models.Index(
                fields=["-popular_score", "-published_at", "-id"],
                condition=Q(hidden_at__isnull=True),
                name="pub_popular",
            ),
            models.Index(fields=["owner", "-published_at"], name="pub_owner"),
        ]

    def __str__(self) -> str:
        return self.title or str(self.image_id)

    # Explore links each of its 48 tiles four times: the routes are resolved once, then the id
    # is put in its place (generator.models.image_url; the same as reverse(), script prefix too).
    @property
    def page_url(self) -> str:
        return image_url("sharing:publication", self.pk)

    @property
    def thumbnail_url(self) -> str:
        return image_url("sharing:publication_thumbnail", self.pk)

    @property
    def like_url(self) -> str:
        return image_url("sharing:like", self.pk)

    @property
    def favourite_url(self) -> str:
        return image_url("sharing:favourite", self.pk)

    @property
    def is_hidden(self) -> bool:
        return self.hidden_at is not None

    def hide(self, by: AbstractBaseUser | None, reason: str) -> None:
        """Staff take it off Explore (the author still has the image and sees why). Hiding it
        again keeps when it was first hidden and records the new reason and who gave it."""
        self.hidden_at = self.hidden_at or timezone.now()
        self.hidden_reason = reason
        self.hidden_by = by  # type: ignore[assignment]  # any user model: settings.AUTH_USER_MODEL
        self.save(update_fields=["hidden_at", "hidden_reason", "hidden_by"])

    def unhide(self) -> None:
        self.hidden_at = None
        self.hidden_reason = ""
        self.hidden_by = None
        self.save(update_fields=["hidden_at", "hidden_reason", "hidden_by"])


class Like(models.Model):
    """One person likes one published image (at most once)."""

    publication = models.ForeignKey(
        Publication, on_delete=models.CASCADE, related_name="likes", verbose_name=_("published image")
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(_("liked"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("like")
        verbose_name_plural = _("likes")
        constraints = [models.UniqueConstraint(fields=["user", "publication"], name="like_once")]
        indexes = [models.Index(fields=["user", "-created_at"], name="like_user_recent")]

    def __str__(self) -> str:
        return f"{self.user_id} likes {self.publication_id}"


class Favourite(models.Model):
    """One person keeps one published image in their Favourites (at most once)."""

    publication = models.ForeignKey(
        Publication, on_delete=models.CASCADE, related_name="favourites", verbose_name=_("published image")
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(_("added"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("favourite")
        verbose_name_plural = _("favourites")
        constraints = [models.UniqueConstraint(fields=["user", "publication"], name="favourite_once")]
        indexes = [models.Index(fields=["user", "-created_at"], name="favourite_user_recent")]

    def __str__(self) -> str:
        return f"{self.user_id} keeps {self.publication_id}"


class View(models.Model):
    """A person saw a published image on a day: counted once per person per day."""

    publication = models.ForeignKey(Publication, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["publication", "user", "day"], name="view_once_a_day")]

    def __str__(self) -> str:
        return f"{self.user_id} saw {self.publication_id} on {self.day}"


class PublicationDay(models.Model):
    """A published image's likes, downloads and views on one day: what "popular" sums."""

    publication = models.ForeignKey(Publication, on_delete=models.CASCADE, related_name="days")
    day = models.DateField()
    likes = models.IntegerField(default=0)  # likes given that day less likes taken back that day
    downloads = models.PositiveIntegerField(default=0)
    views = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["publication", "day"], name="publicationday_once")]
        indexes = [models.Index(fields=["day"], name="publicationday_day")]

    def __str__(self) -> str:
        return f"{self.publication_id} on {self.day}"


class ShareLink(models.Model):
    """A revocable, optionally expiring link to one image or an album (up to 100) that anyone
    holding it may open. Like API tokens, only the sha256 of its secret is stored."""

    MAX_IMAGES = 100

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="share_links", verbose_name=_("owner")
    )
    title = models.CharField(_("title"), max_length=120, blank=True, default="")
    show_prompt = models.BooleanField(_("show the prompt"), default=True)
    prefix = models.CharField(_("prefix"), max_length=12, editable=False)
    digest = models.CharField(_("digest"), max_length=64, unique=True, editable=False)
    images: models.ManyToManyField[Image, SharedImage] = models.ManyToManyField(
        Image, through="SharedImage", related_name="share_links", verbose_name=_("images")
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True, editable=False)
    view_count = models.PositiveIntegerField(_("views"), default=0, editable=False)

    class Meta:
        verbose_name = _("share link")
        verbose_name_plural = _("share links")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "revoked_at", "-created_at"], name="sharelink_owner_active")]

    def __str__(self) -> str:
        return f"{self.title or _('share link')} ({self.prefix}…)"

    def is_active(self, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    def revoke(self) -> bool:
        """Stop the link working from the next request on; False if it was revoked already
        (the first revocation's time stays)."""
        if self.revoked_at is not None:
            return False
        now = timezone.now()
        revoked = ShareLink.objects.filter(pk=self.pk, revoked_at__isnull=True).update(revoked_at=now) == 1
        self.revoked_at = now if revoked else ShareLink.objects.values_list("revoked_at", flat=True).get(pk=self.pk)
        return revoked

    def count_view(self) -> None:
        """One more view of its page (F(): concurrent views all count)."""
        ShareLink.objects.filter(pk=self.pk).update(view_count=F("view_count") + 1)


class SharedImage(models.Model):
    """An image in a share link, in the order its owner chose."""

    link = models.ForeignKey(ShareLink, on_delete=models.CASCADE, related_name="entries")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["link", "image"], name="sharedimage_once")]

    def __str__(self) -> str:
        return f"{self.link_id} #{self.position}: {self.image_id}"
