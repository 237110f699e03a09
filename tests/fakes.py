"""A provider whose answers a test scripts: errors, results, or a hook to run mid-call."""

from __future__ import annotations

from collections.abc import Callable

from generator.providers import GeneratedImage, GenerationRequest, ModelInfo, ProviderError
from generator.providers.offline import draw_sketch


class ScriptedProvider:
    name = "scripted"
    label = "Scripted (tests)"
    is_sketch = False
    # Each call pops the next step: an exception to raise, a list of results, a callable
    # run before drawing, or None to draw normally.
    script: list[ProviderError | list[GeneratedImage] | Callable[[], None] | None] = []
    calls = 0

    @classmethod
    def from_settings(cls, settings, name: str = "scripted") -> ScriptedProvider:
        return cls()

    def models(self) -> list[ModelInfo]:
        return [ModelInfo(id="fixed", label="Fixed sizes", sizes=((256, 192), (512, 512)), max_images=2)]

    def check(self) -> None:
        return None

    def generate(self, request: GenerationRequest, progress=None) -> list[GeneratedImage]:
        type(self).calls += 1
        step = type(self).script.pop(0) if type(self).script else None
        if isinstance(step, ProviderError):
            raise step
        if isinstance(step, list):
            return step
        if callable(step):
            step()
        seed = request.seed or 5
        return [GeneratedImage(data=draw_sketch(request, seed + i), seed=seed + i) for i in range(request.num_images)]
