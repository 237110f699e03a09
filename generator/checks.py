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
        required = getattr(provider_class, "REQUIRED", ())
        if not required:
            continue
        missing = ProviderConfig.from_settings(settings, name).missing(required)
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
