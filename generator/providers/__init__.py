"""Provider registry: names map to dotted paths, imported on first use.

A provider class offers `from_settings(settings) -> provider | None`; None means it is
not configured, so it is not offered anywhere.
"""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from .base import GeneratedImage, GenerationRequest, ModelInfo, Provider
from .errors import PermanentProviderError, ProviderError, TransientProviderError

BUILTIN_PROVIDERS: dict[str, str] = {
    "offline": "generator.providers.offline.OfflineProvider",
    "volcengine": "generator.providers.volcengine.VolcEngineProvider",
    "openai": "generator.providers.openai_compatible.OpenAICompatibleProvider",
    "ark": "generator.providers.openai_compatible.OpenAICompatibleProvider",
    "siliconflow": "generator.providers.openai_compatible.OpenAICompatibleProvider",
    "dashscope": "generator.providers.dashscope.DashScopeProvider",
    "automatic1111": "generator.providers.automatic1111.Automatic1111Provider",
}

__all__ = [
    "GeneratedImage",
    "GenerationRequest",
    "ModelInfo",
    "PermanentProviderError",
    "Provider",
    "ProviderError",
    "TransientProviderError",
    "enabled_providers",
    "get_provider",
]


def registry() -> dict[str, str]:
    """Every known provider name and its class's dotted path, enabled or not."""
    return _registry()


def _registry() -> dict[str, str]:
    return {**BUILTIN_PROVIDERS, **getattr(settings, "EXTRA_PROVIDERS", {})}


@cache
def _build(dotted_path: str, name: str) -> Provider | None:
    return import_string(dotted_path).from_settings(settings, name=name)


def enabled_providers() -> dict[str, Provider]:
    """Configured providers by name, in registry order."""
    built = {name: _build(path, name) for name, path in _registry().items()}
    return {name: provider for name, provider in built.items() if provider is not None}


def get_provider(name: str) -> Provider | None:
    return enabled_providers().get(name)


def reset_cache() -> None:
    """Forget built providers (tests change settings)."""
    _build.cache_clear()
