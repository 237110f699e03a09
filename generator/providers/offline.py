"""The offline provider: deterministic sketches drawn with Pillow, no network, not AI.

Same prompt, negative prompt, seed, size and model give the same PNG bytes; different
prompts get a different palette and composition, so they are told apart at a glance.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import textwrap
import time
from functools import lru_cache

from django.utils.translation import gettext_lazy as _
from PIL import Image, ImageDraw, ImageFont

from .base import (
    GeneratedImage,
    GenerationRequest,
    GenerationStopped,
    ModelInfo,
    ModelListing,
    ProgressCallback,
    live_preview,
    stop_requested,
)

MAX_SEED = 2**32 - 1


class OfflineProvider:
    name = "offline"
    label = _("Offline sketch")
    is_sketch = True

    def __init__(self, *, name: str = "offline", delay_seconds: float = 0.0) -> None:
        self.name = name
        self.delay_seconds = delay_seconds

    @classmethod
    def from_settings(cls, settings, name: str = "offline") -> OfflineProvider | None:
        if not settings.OFFLINE_PROVIDER:
            return None
        return cls(name=name, delay_seconds=settings.OFFLINE_DELAY_SECONDS)

    def models(self) -> list[ModelInfo]:
        return [
            # Steps and guidance change nothing in a sketch, but are kept so settings round-trip.
            ModelInfo(
                id="sketch-v1",
                label=_("Offline sketch (not AI)"),
                min_size=64,
                max_size=2048,
                supports_steps=True,
                supports_guidance=True,
            ),
        ]

    def check(self) -> ModelListing:
        return None  # built in: nothing to reach, nothing to retire

    def generate(self, request: GenerationRequest, progress: ProgressCallback | None = None) -> list[GeneratedImage]:
        """Draw the pictures one by one: progress after each, shown as the preview; a stopped
        task's remaining pictures are not drawn."""
        base_seed = request.seed if request.seed is not None else random.SystemRandom().randint(0, MAX_SEED)
        preview = live_preview(progress)
        results = []
        for index in range(request.num_images):
            if stop_requested(progress):
                raise GenerationStopped
            seed = (base_seed + index) % (MAX_SEED + 1)
            started = time.monotonic()
            results.append(GeneratedImage(data=draw_sketch(request, seed), seed=seed))
            if self.delay_seconds:
                # A slow provider's picture takes its delay, drawing included: the drawing is
                # the vendor's work, which a real provider does on its own machines.
                time.sleep(max(0.0, self.delay_seconds / request.num_images - (time.monotonic() - started)))
            if progress:
                progress(int(100 * (index + 1) / request.num_images))
            if preview is not None and index + 1 < request.num_images:
                preview(results[-1].data or b"")
        return results


def _digest(*parts: object) -> bytes:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()


def _palette(prompt: str) -> list[tuple[int, int, int]]:
    digest = _digest("palette", prompt.strip().lower())
    return [tuple(digest[i : i + 3]) for i in range(0, 24, 3)]  # type: ignore[misc]


def draw_sketch(request: GenerationRequest, seed: int) -> bytes:
    width, height = request.width, request.height
    rng = random.Random(_digest(request.prompt, request.negative_prompt, request.model, seed, width, height))
    palette = _palette(request.prompt)

    gradient = Image.linear_gradient("L").rotate(rng.choice([0, 45, 90, 135]), expand=False)
    mask = gradient.resize((width, height))
    canvas = Image.composite(
        Image.new("RGB", (width, height), palette[0]), Image.new("RGB", (width, height), palette[1]), mask
    )

    layer = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    shortest = min(width, height)
    for _stroke in range(12 + len(request.prompt.split()) % 12):
        color = (*rng.choice(palette[2:]), rng.randint(90, 200))
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        r = rng.uniform(0.04, 0.25) * shortest
        shape = rng.choice(("circle", "square", "triangle", "line"))
        if shape == "circle":
            draw.ellipse((x - r, y - r, x + r, y + r), fill=color)
        elif shape == "square":
            draw.rectangle((x - r, y - r, x + r, y + r), fill=color)
        elif shape == "triangle":
            draw.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=color)
        else:
            draw.line((x, y, rng.uniform(0, width), rng.uniform(0, height)), fill=color, width=max(2, shortest // 80))
    canvas.paste(layer, (0, 0), layer)

    _caption(canvas, request.prompt, seed)
    out = io.BytesIO()
    canvas.save(out, "PNG", compress_level=3)
    return out.getvalue()


# Pillow's own font has Latin letters only; a prompt in Chinese (or any other script) is
# drawn with the first of these that the machine has (Debian: fonts-noto-cjk, fonts-wqy-*).
WIDE_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
)


@lru_cache(maxsize=1)
def wide_font_path() -> str | None:
    return next((path for path in WIDE_FONTS if os.path.isfile(path)), None)


def _prompt_font(prompt: str, size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    path = wide_font_path()
    if path and any(ord(character) > 0x24F for character in prompt):  # beyond Latin Extended
        return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)


def _caption(canvas: Image.Image, prompt: str, seed: int) -> None:
    width, height = canvas.size
    size = max(10, min(width, height) // 24)
    font = _prompt_font(prompt, size)
    small = ImageFont.load_default(size=max(8, size * 2 // 3))
    # Characters per line: Chinese glyphs are about a full em wide, Latin ones about half.
    wrap = (
        max(4, int(width / size) - 1)
        if isinstance(font, ImageFont.FreeTypeFont) and font.path == wide_font_path()
        else max(8, int(width / (size * 0.55)))
    )
    lines = textwrap.wrap(prompt, wrap)[:3] or [""]
    band_height = int(size * 1.3 * len(lines) + size * 1.6)
    band = Image.new("RGBA", (width, band_height), (0, 0, 0, 150))
    canvas.paste(band, (0, height - band_height), band)
    draw = ImageDraw.Draw(canvas)
    top = height - band_height + size // 3
    for line in lines:
        draw.text((size // 2, top), line, font=font, fill=(255, 255, 255))
        top += int(size * 1.3)
    draw.text((size // 2, top), f"offline sketch · seed {seed}", font=small, fill=(220, 220, 220))
