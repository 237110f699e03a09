"""Personal API tokens: a name, a short prefix for display, the sha256 of the secret and what
the token may do (its scopes).

The token itself ("atl_" + 43 url-safe characters) is shown once, when it is created, and is
never stored: a lookup hashes what the caller sends and compares hashes.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import models
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# last_used_at is written at most this often per token, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class Scope(models.TextChoices):
    """What a token may be used for. A token holds a set of them; each endpoint asks for one."""

    # /api/v1 and the OpenAI-compatible /v1: make, read and delete the owner's images.
    API = "api", _("API")
    # GET /metrics only (and only while the owner is staff): a scrape credential that leaks
    # cannot make images or read anyone's pictures.
    METRICS = "metrics", _("Metrics")


def default_scopes() -> list[str]:
    """Tokens made before scopes existed, and tokens made without naming one, use the API."""
    return [Scope.API.value]


class ApiToken(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens", verbose_name=_("owner")
    )
    name = models.CharField(_("name"), max_length=100)
    # "atl_" and the secret's first four characters: enough to tell tokens apart, useless to an attacker.
    prefix = models.CharField(_("prefix"), max_length=12, editable=False)
    # hex sha256 of the whole token; unique, so authenticating is one indexed lookup.
    digest = models.CharField(_("digest"), max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True, editable=False)
    # Chosen when the token is made (never, or some days on); past it the token is a 401 like a revoked one.
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True, editable=False)
    # A sorted list of Scope values (a JSON list: the same on SQLite and PostgreSQL).
    scopes = models.JSONField(_("scopes"), default=default_scopes, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        indexes = [
            # The account page: one person's tokens that still work, newest first.
            models.Index(fields=["owner", "revoked_at", "-created_at"], name="apitoken_owner_active"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and not self.is_expired

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    def has_scope(self, scope: Scope | str) -> bool:
        return isinstance(self.scopes, list) and str(scope) in self.scopes

    @property
    def scope_labels(self) -> list[str]:
        """The scopes for people, in Scope's order (unknown values left out)."""
        return [str(scope.label) for scope in Scope if self.has_scope(scope)]

    def revoke(self) -> None:
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])

    def touch(self) -> None:
        """Record a use, at most once per LAST_USED_RESOLUTION (one conditional UPDATE)."""
        now = timezone.now()
        if self.last_used_at is not None and now - self.last_used_at < LAST_USED_RESOLUTION:
            return
        stale = models.Q(last_used_at__isnull=True) | models.Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
        ApiToken.objects.filter(stale, pk=self.pk).update(last_used_at=now)
        self.last_used_at = now


def revoke_all_tokens(owner_id: int) -> int:
    """Revoke every token of one person that is not revoked yet; how many were."""
    return ApiToken.objects.filter(owner_id=owner_id, revoked_at__isnull=True).update(revoked_at=timezone.now())


@receiver(post_save, sender=User, dispatch_uid="accounts.revoke_tokens_of_inactive_users")
def revoke_tokens_of_inactive_users(
    sender: type[User], instance: User, created: bool, update_fields: frozenset[str] | None, **kwargs: object
) -> None:
    """Staff deactivating someone (the admin saves the user) ends their tokens for good: they stay
    revoked if the person is activated again. Saves that do not touch is_active cost nothing."""
    if created or instance.is_active or (update_fields is not None and "is_active" not in update_fields):
        return
    revoke_all_tokens(instance.pk)
