"""System checks: a half-configured provider is reported by name and variable."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register
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
