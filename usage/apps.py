from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class UsageConfig(AppConfig):
    """Prices, quotas and spend: what each person's images cost and how many they may make."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "usage"
    verbose_name = _("Usage and quotas")
