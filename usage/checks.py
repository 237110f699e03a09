"""A price in a currency with no exchange rate cannot count against a spend quota: say so at start."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from .prices import DEFAULT_PRICES


@checks.register()
def currencies_have_rates(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    currencies = {price.currency for price in DEFAULT_PRICES.values() if price.amount}
    missing = sorted(currencies - {settings.USAGE_CURRENCY} - set(settings.USAGE_EXCHANGE_RATES))
    if not missing or settings.QUOTA_SPEND_PER_MONTH is None:
        return []
    return [
        checks.Warning(
            f"Prices in {', '.join(missing)} have no exchange rate to {settings.USAGE_CURRENCY}: their costs are "
            "shown apart and do not count against QUOTA_SPEND_PER_MONTH.",
            hint=f"Set USAGE_EXCHANGE_RATES, e.g. {missing[0]}=0.14.",
            id="usage.W001",
        )
    ]
