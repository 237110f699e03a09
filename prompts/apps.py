from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PromptsConfig(AppConfig):
    """Prompt assistance: the LLM prompt helper, style presets and variant sets."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "prompts"
    verbose_name = _("Prompt assistance")
