"""The one small interface every image provider implements."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

ProgressCallback = Callable[[int], None]


@dataclass(frozen=True)
class ModelInfo:
    """One model a provider offers, with the limits the form enforces."""

    id: str
    label: str
    min_size: int = 256
    max_size: int = 2048
    size_multiple: int = 8
    max_images: int = 4
    supports_negative_prompt: bool = True
    supports_seed: bool = True
    max_seed: int = 2**32 - 1
    sizes: tuple[tuple[int, int], ...] = ()  # fixed sizes only, when the model has them

    def size_error(self, width: int, height: int) -> str | None:
        """A readable reason why this size is not allowed, or None."""
        if self.sizes:
            if (width, height) not in self.sizes:
                allowed = ", ".join(f"{w}×{h}" for w, h in self.sizes)
                return f"{self.label} only makes these sizes: {allowed}."
            return None
        for value in (width, height):
            if not self.min_size <= value <= self.max_size:
                return f"Width and height must be between {self.min_size} and {self.max_size} pixels."
            if value % self.size_multiple:
                return f"Width and height must be multiples of {self.size_multiple}."
        return None

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "label": self.label,
            "min_size": self.min_size,
            "max_size": self.max_size,
            "size_multiple": self.size_multiple,
            "sizes": [f"{w}x{h}" for w, h in self.sizes],
            "max_images": self.max_images,
            "supports_negative_prompt": self.supports_negative_prompt,
            "supports_seed": self.supports_seed,
        }


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    model: str
    width: int
    height: int
    num_images: int = 1
    negative_prompt: str = ""
    steps: int | None = None
    guidance_scale: float | None = None
    seed: int | None = None  # None: the provider picks


@dataclass
class GeneratedImage:
    """One result: the bytes, or a URL to fetch at once (provider links expire)."""

    data: bytes | None = None
    url: str | None = None
    seed: int | None = None
    extra: dict = field(default_factory=dict)


class ProviderError(Exception):
    """A failure a person can read. `transient` ones are worth another attempt."""

    transient = False

    def __init__(self, code: str, message: str, *, request_id: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


class TransientProviderError(ProviderError):
    transient = True


class PermanentProviderError(ProviderError):
    transient = False


class Provider(Protocol):
    name: str
    label: str
    is_sketch: bool  # True for the offline provider: its pictures are not AI

    def models(self) -> list[ModelInfo]: ...

    def generate(
        self, request: GenerationRequest, progress: ProgressCallback | None = None
    ) -> list[GeneratedImage]: ...

    def check(self) -> None:
        """Raise ProviderError when the provider cannot be reached (readiness)."""
