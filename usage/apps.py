from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class UsageConfig(AppConfig):
    """Prices, quotas and spend: what each person's images cost and how many they may make."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "usage"
    verbose_name = _("Usage and quotas")

    def ready(self) -> None:
        from . import checks, prices  # noqa: F401  (the price cache's signal receivers; the system check)
