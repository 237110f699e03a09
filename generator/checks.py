"""System checks: a half-configured provider is reported by name and variable, and so is a
cloud provider whose key would travel in clear text, or a provider limit that cannot be read
or falls back to nowhere."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.checks import CheckMessage, Error, register
from django.core.checks import Warning as CheckWarning  # not the builtin Warning
from django.utils.module_loading import import_string

from .providers import enabled_providers, registry
from .providers.base import ProviderConfig
from .scheduler.limits import Fallback, InvalidLimit, Rate


@register()
def provider_configuration(app_configs=None, **kwargs) -> list[Error]:
    errors = []
    for name, dotted_path in registry().items():
        provider_class = import_string(dotted_path)
        config = ProviderConfig.from_settings(settings, name)
        errors += _incomplete_groups(name, config, getattr(provider_class, "REQUIRED_TOGETHER", ()))
        required = getattr(provider_class, "REQUIRED", ())
        if not required:
            continue
        missing = config.missing(required)
        if missing:
            errors.append(
                Error(
                    f"The {name} provider is only partly configured: {', '.join(missing)} "
                    f"{'is' if len(missing) == 1 else 'are'} not set.",
                    hint=f"Set {' and '.join(missing)}, or remove the other {name} variables to turn it off.",
                    id="atelier.E001",
                    obj=name,
                )
            )
    return errors


@register()
def provider_base_urls_are_encrypted(app_configs=None, **kwargs) -> list[CheckMessage]:
    """A cloud provider reached over plain http would receive its key (and the prompts) in
    clear text, readable and replayable by anyone on the path."""
    warnings: list[CheckMessage] = []
    for name in registry():
        config = ProviderConfig.from_settings(settings, name)
        base_url = str(config.get("BASE_URL", ""))
        if not base_url.lower().startswith("http://") or _self_hosted(config):
            continue
        variable = config.env_prefix + "BASE_URL"
        warnings.append(
            CheckWarning(
                f"{variable} is a plain-http address: the {name} provider's key and the prompts "
                "would travel in clear text.",
                hint=f"Use an https:// address, or set {config.env_prefix}SELF_HOSTED=true if it is your "
                "own gateway on a network you trust.",
                id="atelier.W001",
                obj=name,
            )
        )
    return warnings


def _self_hosted(config: ProviderConfig) -> bool:
    """Marked self-hosted by the operator, or a provider that has no such switch because it
    only ever runs on the operator's own machine (AUTOMATIC1111)."""
    return "SELF_HOSTED" not in config.values or bool(config.get("SELF_HOSTED", False))


def _incomplete_groups(name: str, config: ProviderConfig, groups: tuple[tuple[str, ...], ...]) -> list[Error]:
    """Variables that only work together, such as a username and its password."""
    errors = []
    for group in groups:
        present = [key for key in group if config.get(key)]
        if present and len(present) < len(group):
            given = ", ".join(config.env_prefix + key for key in present)
            absent = ", ".join(config.env_prefix + key for key in group if key not in present)
            errors.append(
                Error(
                    f"The {name} provider has {given} set but not {absent}; they only work together.",
                    hint=f"Set {absent} too, or unset {given}.",
                    id="atelier.E002",
                    obj=name,
                )
            )
    return errors


@register()
def rate_limit_cache_is_shared(app_configs=None, **kwargs) -> list[Error]:
    """Rate limits hold only if every web process counts in the same place."""
    backend = settings.CACHES.get(settings.RATELIMIT_USE_CACHE, {}).get("BACKEND", "")
    if settings.WEB_CONCURRENCY > 1 and backend.endswith(("LocMemCache", "DummyCache")):
        return [
            Error(
                f"WEB_CONCURRENCY={settings.WEB_CONCURRENCY} starts several web processes, but rate limits are "
                "counted in each process's own memory, so they would not hold.",
                hint="Set REDIS_URL so all processes share one counter, or keep WEB_CONCURRENCY=1 "
                "(one process serves many requests at once).",
                id="atelier.E003",
            )
        ]
    return []


LIMIT_HINTS = {
    "RATE": "Use calls per period such as 10/m or 5/10s (s, m, h or d), or leave it empty for no limit.",
    "FALLBACK": "Use provider:model, such as offline:sketch-v1, or leave it empty for no fallback.",
}


@register()
def provider_limits_are_readable(app_configs=None, **kwargs) -> list[CheckMessage]:
    """Every <PREFIX>RATE and <PREFIX>FALLBACK must parse (the scheduler reads them for each
    claim), and a fallback should lead to an enabled provider's model."""
    messages: list[CheckMessage] = []
    for name, values in getattr(settings, "PROVIDER_LIMITS", {}).items():
        prefix = ProviderConfig.from_settings(settings, name).env_prefix
        try:
            Rate.parse(str(values.get("RATE") or ""))
        except InvalidLimit as error:
            messages.append(_unreadable(name, prefix, "RATE", error))
        try:
            fallback = Fallback.parse(str(values.get("FALLBACK") or ""))
        except InvalidLimit as error:
            messages.append(_unreadable(name, prefix, "FALLBACK", error))
            continue
        if fallback is not None:
            messages += _unreachable_fallback(name, prefix + "FALLBACK", fallback)
    return messages


def _unreadable(name: str, prefix: str, key: str, error: InvalidLimit) -> Error:
    return Error(f"{prefix}{key} cannot be read: {error}.", hint=LIMIT_HINTS[key], id="atelier.E004", obj=name)


def _unreachable_fallback(name: str, variable: str, fallback: Fallback) -> list[CheckMessage]:
    """A fallback to a provider that is off, or to a model it does not offer, is never used."""
    provider = enabled_providers().get(fallback.provider)
    if fallback.provider not in registry():
        problem = f"names {fallback.provider}, which is not a provider Atelier knows"
        hint = f"Use one of: {', '.join(registry())}."
    elif provider is None:
        problem = f"names the {fallback.provider} provider, which is not enabled"
        hint = f"Configure {fallback.provider}, or point {variable} at an enabled provider."
    elif fallback.model not in {model.id for model in provider.models()}:
        problem = f"names the model {fallback.model}, which {fallback.provider} does not offer"
        hint = f"Use one of {fallback.provider}'s models: {', '.join(model.id for model in provider.models())}."
    else:
        return []
    return [
        CheckWarning(
            f"{variable} {problem}: tasks on {name} will not fail over.", hint=hint, id="atelier.W002", obj=name
        )
    ]


# Variables Atelier no longer reads, and what replaced them: a silent no-op would surprise.
RENAMED_VARIABLES = {
    "MAX_ACTIVE_TASKS_PER_USER": (
        "MAX_QUEUED_TASKS_PER_USER counts waiting tasks (default 20); how many run at once is the "
        "scheduler's fair share (docs/SCHEDULING.md)."
    ),
}


@register()
def renamed_variables_are_not_set(app_configs=None, **kwargs) -> list[CheckMessage]:
    return [
        CheckWarning(f"{name} is set but no longer read.", hint=hint, id="atelier.W003")
        for name, hint in RENAMED_VARIABLES.items()
        if name in os.environ
    ]


# What a step needs beyond the provider's answer: downloading results, thumbnails, saving.
STEP_MARGIN_SECONDS = 60


@register()
def provider_timeouts_fit_in_a_step(app_configs=None, **kwargs) -> list[CheckMessage]:
    """django-q2 stops a step after TASK_TIMEOUT: a provider allowed to take longer to answer
    would have its (paid) call cut off by the worker being stopped instead of by its own timeout."""
    warnings: list[CheckMessage] = []
    for name, provider in enabled_providers().items():
        timeout = getattr(provider, "timeout", None)
        if not isinstance(timeout, tuple):
            continue
        needed = sum(timeout) + STEP_MARGIN_SECONDS
        if needed > settings.TASK_TIMEOUT:
            prefix = ProviderConfig.from_settings(settings, name).env_prefix
            warnings.append(
                CheckWarning(
                    f"The {name} provider may take {sum(timeout):g} s to answer, which with "
                    f"{STEP_MARGIN_SECONDS} s for the results does not fit in TASK_TIMEOUT ({settings.TASK_TIMEOUT} s).",
                    hint=f"Raise TASK_TIMEOUT to at least {needed:g}, or lower {prefix}TIMEOUT_SECONDS.",
                    id="atelier.W004",
                    obj=name,
                )
            )
    return warnings
