from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GeneratorConfig(AppConfig):
    name = "generator"
    verbose_name = _("Generator")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here, not at the top: they need the app registry (checks register
        # themselves; the schedules read django-q2's models).
        from django.core.signals import setting_changed
        from django.db.models.signals import post_migrate

        from . import checks, providers  # noqa: F401
        from .ops.schedules import install_schedules_after_migrate

        def forget_providers(**kwargs: object) -> None:
            providers.reset_cache()

        setting_changed.connect(forget_providers, weak=False)
        # `migrate` (and so `make run` and every deploy) installs the django-q2 schedules.
        post_migrate.connect(install_schedules_after_migrate, sender=self, dispatch_uid="atelier-install-schedules")
