"""System checks: a half-configured provider is reported by name and variable, and so is a
cloud provider whose key would travel in clear text."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import CheckMessage, Error, register
from django.core.checks import Warning as CheckWarning  # not the builtin Warning
from django.utils.module_loading import import_string

from .providers import registry
from .providers.base import ProviderConfig


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
                "(raise WEB_THREADS instead).",
                id="atelier.E003",
            )
        ]
    return []
