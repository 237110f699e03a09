"""Which model ids /v1/ answers to: `provider:model` for every model an enabled provider still
offers (generator.catalogue), the operator's aliases (OPENAI_COMPAT_MODEL_ALIASES, e.g.
dall-e-3=openai:gpt-image-2) and, for clients that only know a vendor's own ids, a bare model id
that exactly one provider offers. A request without a model gets OPENAI_COMPAT_DEFAULT_MODEL,
or the first offered model.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext as _

from generator.catalogue import offered_models
from generator.providers import ModelInfo, enabled_providers

from .errors import OpenAIError


@dataclass(frozen=True)
class Offered:
    """A model a client can name: `id` is what it names (an alias or provider:model)."""

    id: str
    provider: str
    info: ModelInfo

    @property
    def form_value(self) -> str:
        """The generation form's combined provider:model value."""
        return f"{self.provider}:{self.info.id}"


def offered() -> dict[str, Offered]:
    """Every offered model by its `provider:model` id, in the providers' order."""
    return {
        f"{name}:{info.id}": Offered(f"{name}:{info.id}", name, info)
        for name, provider in enabled_providers().items()
        for info in offered_models(name, provider)
    }


def listed() -> list[Offered]:
    """What GET /v1/models shows: the offered models, then each alias whose target is offered."""
    models = offered()
    aliases = []
    for alias, target in settings.OPENAI_COMPAT_MODEL_ALIASES.items():
        found = _lookup(str(target), models)
        if found is not None and alias not in models:
            aliases.append(Offered(alias, found.provider, found.info))
    return [*models.values(), *aliases]


def resolve(requested: str | None) -> Offered:
    """The model a request names (None or "": the default); 404 model_not_found if none is
    offered under that name (unknown, not configured, or retired by its provider)."""
    models = offered()
    name = requested or settings.OPENAI_COMPAT_DEFAULT_MODEL or next(iter(models), "")
    alias_target = settings.OPENAI_COMPAT_MODEL_ALIASES.get(name)
    found = _lookup(str(alias_target), models) if alias_target else _lookup(name, models)
    if found is None:
        raise OpenAIError(
            404,
            _("The model “%(model)s” does not exist or is not offered here. GET /v1/models lists the models.")
            % {"model": name},
            param="model",
            code="model_not_found",
        )
    return Offered(name, found.provider, found.info)


def _lookup(name: str, models: dict[str, Offered]) -> Offered | None:
    """`provider:model`, or a bare model id that exactly one provider offers."""
    if name in models:
        return models[name]
    bare = [model for model in models.values() if model.info.id == name]
    return bare[0] if len(bare) == 1 else None
