"""Prices per image, quotas per person or group, and the record of refused submissions.

A task's cost is written on the task itself when it completes (Task.cost, Task.cost_currency):
the usage figures are sums over tasks, so nothing here has to be kept in step with them.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from generator.models import Task


class ModelPrice(models.Model):
    """What one picture from a provider's model costs (editable by staff in the admin)."""

    provider = models.CharField(_("provider"), max_length=64)
    model = models.CharField(_("model"), max_length=128)
    price_per_image = models.DecimalField(
        _("price per image"), max_digits=10, decimal_places=4, default=Decimal("0"), validators=[MinValueValidator(0)]
    )
    currency = models.CharField(
        _("currency"),
        max_length=3,
        default="USD",
        help_text=_("ISO 4217 code, e.g. USD or CNY."),
        validators=[RegexValidator(r"^[A-Z]{3}$", _("Three capital letters, such as USD or CNY."))],
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("model price")
        verbose_name_plural = _("model prices")
        ordering = ["provider", "model"]
        constraints = [models.UniqueConstraint(fields=["provider", "model"], name="modelprice_provider_model")]

    def __str__(self) -> str:
        return f"{self.provider}:{self.model} {self.price_per_image} {self.currency}"


class Quota(models.Model):
    """Limits for one person or one group, over the defaults from the environment.

    Exactly one of `user` and `group` is set. An empty limit means "not set here": the next
    level decides (person, then their groups, then QUOTA_* settings). A person in several
    groups gets the most generous of the groups' values.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="quota",
        verbose_name=_("person"),
    )
    group = models.OneToOneField(
        Group, on_delete=models.CASCADE, null=True, blank=True, related_name="quota", verbose_name=_("group")
    )
    images_per_day = models.PositiveIntegerField(_("images per day"), null=True, blank=True)
    images_per_month = models.PositiveIntegerField(_("images per month"), null=True, blank=True)
    spend_per_month = models.DecimalField(
        _("spend per month"),
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text=_("In the reporting currency (USAGE_CURRENCY)."),
    )

    class Meta:
        verbose_name = _("quota")
        verbose_name_plural = _("quotas")
        constraints = [
            models.CheckConstraint(
                condition=(Q(user__isnull=False) & Q(group__isnull=True))
                | (Q(user__isnull=True) & Q(group__isnull=False)),
                name="quota_one_owner",
                violation_error_message=_("A quota is for one person or one group: choose exactly one of them."),
            )
        ]

    def __str__(self) -> str:
        return str(self.user or self.group)


class QuotaRefusal(models.Model):
    """A submission refused over a quota: counted by /metrics and shown in the admin."""

    class Kind(models.TextChoices):
        IMAGES_PER_DAY = "images_per_day", _("images per day")
        IMAGES_PER_MONTH = "images_per_month", _("images per month")
        SPEND_PER_MONTH = "spend_per_month", _("spend per month")

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name=_("owner")
    )
    kind = models.CharField(_("quota"), max_length=32, choices=Kind.choices)
    created_at = models.DateTimeField(_("refused"), default=timezone.now)

    class Meta:
        verbose_name = _("quota refusal")
        verbose_name_plural = _("quota refusals")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["created_at"], name="quotarefusal_created")]

    def __str__(self) -> str:
        return f"{self.owner_id} {self.kind} {self.created_at:%Y-%m-%d %H:%M}"


class UsageReport(Task):
    """Tasks seen as usage: the admin's read-only report per person, provider and model
    (usage.admin.UsageReportAdmin). No table of its own."""

    class Meta:
        proxy = True
        verbose_name = _("usage report")
        verbose_name_plural = _("usage reports")
