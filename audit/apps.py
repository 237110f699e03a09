from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AuditConfig(AppConfig):
    """The audit log: an append-only record of security-relevant events."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "audit"
    verbose_name = _("Audit log")
