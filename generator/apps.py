from django.apps import AppConfig


class GeneratorConfig(AppConfig):
    name = "generator"
    verbose_name = "Generator"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core.signals import setting_changed

        from . import checks, providers  # noqa: F401  (checks register themselves)

        def forget_providers(**kwargs) -> None:
            providers.reset_cache()

        setting_changed.connect(forget_providers, weak=False)
