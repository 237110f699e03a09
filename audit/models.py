"""The audit log: who did what, when, from where, to which object. Rows are only ever added
(audit.log.record) and removed by retention (AUDIT_RETENTION_DAYS); nothing in the app edits
or deletes one otherwise."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Event(models.TextChoices):
    SIGN_IN = "sign_in", _("signed in")
    SIGN_IN_FAILED = "sign_in_failed", _("sign-in failed")
    SIGN_OUT = "sign_out", _("signed out")
    PASSWORD_CHANGED = "password_changed", _("password changed")
    TOKEN_CREATED = "token_created", _("API token created")
    TOKEN_REVOKED = "token_revoked", _("API token revoked")
    SIGN_UP_APPROVED = "sign_up_approved", _("sign-up approved")
    TASK_RETRIED = "task_retried", _("task retried by staff")
    TASK_CANCELED = "task_canceled", _("task canceled by staff")
    TASK_DELETED = "task_deleted", _("task deleted by staff")
    IMAGE_DELETED = "image_deleted", _("image deleted by staff")
    IMAGE_HIDDEN = "image_hidden", _("published image hidden")
    IMAGE_UNHIDDEN = "image_unhidden", _("published image shown again")
    PUBLISHED = "published", _("image published")
    UNPUBLISHED = "unpublished", _("image unpublished")
    SHARE_LINK_CREATED = "share_link_created", _("share link created")
    SHARE_LINK_REVOKED = "share_link_revoked", _("share link revoked")
    EXPORTED = "exported", _("data exported")
    IMPORTED = "imported", _("data imported")
    BACKED_UP = "backed_up", _("backup made")
    RESTORED = "restored", _("backup restored")


class AuditEntry(models.Model):
    at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    event = models.CharField(_("event"), max_length=32, choices=Event.choices, db_index=True)
    # Who: the account (kept as a name too, so the entry outlives it); empty for the system
    # (a schedule, a command run without --user) and for a failed sign-in that names no account.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("who"),
    )
    actor_name = models.CharField(_("who (name)"), max_length=150, blank=True, default="")
    address = models.GenericIPAddressField(_("address"), null=True, blank=True)
    # What: the object's kind ("generator.task"), id and a short description at the time.
    target_type = models.CharField(_("object type"), max_length=64, blank=True, default="")
    target_id = models.CharField(_("object id"), max_length=64, blank=True, default="")
    target_repr = models.CharField(_("object"), max_length=200, blank=True, default="")
    detail = models.JSONField(_("detail"), default=dict, blank=True)

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit log")
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["actor", "-at"], name="audit_actor_recent")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.event} {self.actor_name or '-'}"
