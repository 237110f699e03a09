from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GatewayConfig(AppConfig):
    """The OpenAI-compatible images API at /v1/, for chat front ends and `openai` scripts."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "gateway"
    verbose_name = _("OpenAI-compatible API")
