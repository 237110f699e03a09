from django.apps import AppConfig
from django.core import checks
from django.utils.translation import gettext_lazy as _

from .addresses import check_trusted_proxies


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Accounts")

    def ready(self) -> None:
        checks.register(check_trusted_proxies, checks.Tags.security)
