"""Reading the quota and currency settings from the environment (config/settings.py).

Pure functions, no Django models: the settings module imports them. A value that cannot be
read stops the start with a message naming the variable, rather than being ignored.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.core.exceptions import ImproperlyConfigured

CURRENCY_LENGTH = 3


def image_limit(name: str, raw: str) -> int | None:
    """QUOTA_IMAGES_PER_*: empty = unlimited (None), 0 = none allowed, else a whole number."""
    raw = raw.strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise ImproperlyConfigured(f"{name} must be a whole number of images (0 or more), or empty; not {raw!r}.")
    return int(raw)


def spend_limit(name: str, raw: str) -> Decimal | None:
    """QUOTA_SPEND_PER_MONTH: empty = unlimited (None), 0 = nothing that costs, else an amount
    in USAGE_CURRENCY."""
    raw = raw.strip()
    if not raw:
        return None
    amount = _decimal(raw)
    if amount is None or amount < 0:
        raise ImproperlyConfigured(f"{name} must be an amount of money (0 or more), or empty; not {raw!r}.")
    return amount


def currency(name: str, raw: str) -> str:
    code = raw.strip().upper()
    if len(code) != CURRENCY_LENGTH or not code.isalpha():
        raise ImproperlyConfigured(f"{name} must be a three-letter currency code such as USD; not {raw!r}.")
    return code


def exchange_rates(name: str, raw: str) -> dict[str, Decimal]:
    """USAGE_EXCHANGE_RATES: "CNY=0.14,EUR=1.08" — what one unit of each currency is worth in
    USAGE_CURRENCY."""
    rates: dict[str, Decimal] = {}
    for item in raw.split(","):
        if not item.strip():
            continue
        code, _sep, value = item.partition("=")
        rate = _decimal(value.strip())
        if rate is None or rate <= 0:
            raise ImproperlyConfigured(
                f"{name} takes CODE=rate pairs separated by commas, e.g. CNY=0.14; {item.strip()!r} is not one."
            )
        rates[currency(name, code)] = rate
    return rates


def _decimal(raw: str) -> Decimal | None:
    try:
        value = Decimal(raw)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None
