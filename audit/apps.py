from django.apps import AppConfig
from django.core import checks
from django.utils.translation import gettext_lazy as _

from .networks import check_admin_networks


class AuditConfig(AppConfig):
    """The audit log: an append-only record of security-relevant events."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "audit"
    verbose_name = _("Audit log")

    def ready(self) -> None:
        # Imported here, not at the top: the receivers write AuditEntry, which needs the registry.
        from . import signals  # noqa: F401

        checks.register(check_admin_networks, checks.Tags.security)
