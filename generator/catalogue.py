"""The live catalogue: which configured models each provider still offers.

Providers retire models (OpenAI shut gpt-image-1 down on 2026-10-23); a model Atelier keeps
offering after that makes every task fail after a paid round trip. So each provider's check()
is asked what it offers (at the worker's start-up, every hour from a schedule, and from
`manage.py check_providers`), and a configured model missing from its answer is *retired*: hidden
from the create page and the API's model list, named in /readyz and the admin overview, and a
task for it fails at once. The findings live in ProviderStatus rows, so every process sees them.

A failed check changes no verdict: a provider that is down for a minute retires nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from .models import ProviderStatus
from .providers import ModelInfo, Provider, ProviderError, enabled_providers

logger = logging.getLogger(__name__)

# Seconds a process trusts its copy of the verdicts before reading them again: a check made
# by another process (the worker's schedule) reaches the web pages within this.
MEMO_SECONDS = 30.0
_memo: tuple[float, dict[str, frozenset[str]]] | None = None


@dataclass(frozen=True)
class CheckResult:
    provider: str
    reachable: bool
    retired: tuple[str, ...]
    listed: int | None  # how many models the provider listed; None when it cannot list them
    error: str = ""

    def summary(self) -> str:
        if not self.reachable:
            return f"{self.provider}: check failed ({self.error})"
        listed = "reachable" if self.listed is None else f"{self.listed} models listed"
        retired = f", retired: {', '.join(self.retired)}" if self.retired else ""
        return f"{self.provider}: {listed}{retired}"


def refresh(names: Iterable[str] | None = None) -> list[CheckResult]:
    """Check each enabled provider (or those named) and store what it offers now."""
    providers = enabled_providers()
    chosen = providers if names is None else {name: providers[name] for name in names if name in providers}
    results = [_check(name, provider) for name, provider in chosen.items()]
    forget()
    return results


def _check(name: str, provider: Provider) -> CheckResult:
    configured = [model.id for model in provider.models()]
    try:
        listing = provider.check()
    except ProviderError as error:
        logger.warning("provider %s failed its check: %s", name, error.code)
        with transaction.atomic():
            status, _created = ProviderStatus.objects.select_for_update().get_or_create(provider=name)
            status.checked_at, status.reachable = timezone.now(), False
            status.error_code, status.error_reason = error.code, error.reason.as_json()
            status.save()
        return CheckResult(name, False, tuple(status.retired_models), None, error.reason.english())
    except Exception:  # a provider module's bug must not stop the other checks
        logger.exception("provider %s check raised", name)
        return CheckResult(name, False, (), None, "internal error")
    retired = () if listing is None else tuple(sorted(set(configured) - listing))
    if retired:
        logger.warning("provider %s no longer offers %s", name, ", ".join(retired))
    ProviderStatus.objects.update_or_create(
        provider=name,
        defaults={
            "checked_at": timezone.now(),
            "reachable": True,
            "error_code": "",
            "error_reason": None,
            "listed_models": None if listing is None else sorted(listing),
            "retired_models": list(retired),
        },
    )
    return CheckResult(name, True, retired, None if listing is None else len(listing))


def retired_models() -> dict[str, frozenset[str]]:
    """{provider: model ids it no longer offers}, as the last checks found."""
    global _memo
    now = time.monotonic()
    if _memo is None or now - _memo[0] > MEMO_SECONDS:
        rows = ProviderStatus.objects.exclude(retired_models=[]).values_list("provider", "retired_models")
        _memo = (now, {provider: frozenset(models) for provider, models in rows})
    return _memo[1]


def forget() -> None:
    """Read the verdicts again next time (after a check, and between tests)."""
    global _memo
    _memo = None


def is_retired(provider: str, model: str) -> bool:
    return model in retired_models().get(provider, ())


def offered_models(name: str, provider: Provider) -> list[ModelInfo]:
    """The provider's configured models, less the ones it retired."""
    retired = retired_models().get(name, frozenset())
    return [model for model in provider.models() if model.id not in retired]


def statuses() -> list[ProviderStatus]:
    """The stored findings for the providers enabled now, for /readyz and the admin overview."""
    enabled = enabled_providers()
    return [status for status in ProviderStatus.objects.filter(provider__in=list(enabled))]
