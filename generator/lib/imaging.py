"""Pure image functions (bytes in, bytes out): validation, metadata, thumbnails. No ORM."""

from __future__ import annotations

import io
import json
import struct
import warnings
import zlib
from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from PIL import Image, ImageOps

from ..reasons import Reason

ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Well below Pillow's own bomb limit: no provider makes pictures this large.
MAX_PIXELS = 64_000_000


class InvalidImage(ValueError):
    """The bytes are not an image we accept (format, size or corruption)."""

    def __init__(self, message: str | Promise) -> None:
        self.reason = Reason(message)  # shown on the task, in its reader's language
        super().__init__(self.reason.english())


@dataclass(frozen=True)
class StoredImageData:
    png: bytes
    width: int
    height: int


def open_checked(data: bytes) -> Image.Image:
    """Open and fully decode provider bytes, refusing non-images and decompression bombs."""
    if not (
        data.startswith(PNG_SIGNATURE)
        or data.startswith(b"\xff\xd8\xff")
        or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")
    ):
        raise InvalidImage(_("The provider returned something that is not a PNG, JPEG or WebP image."))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
            if image.width * image.height > MAX_PIXELS:
                raise InvalidImage(_("The provider returned an image too large to store."))
            image.load()
    except InvalidImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidImage(_("The provider returned an image too large to store.")) from exc
    except Exception as exc:  # Pillow raises many types for corrupt input
        raise InvalidImage(_("The provider returned a damaged image.")) from exc
    return image


def a1111_parameters(
    *,
    prompt: str,
    negative_prompt: str,
    steps: int | None,
    guidance_scale: float | None,
    seed: int | None,
    width: int,
    height: int,
    model: str,
    provider: str,
    version: str,
) -> str:
    """The `parameters` text AUTOMATIC1111 writes, which Civitai and image browsers read."""

    def quote(value: object) -> str:
        text = str(value)
        return json.dumps(text, ensure_ascii=False) if any(c in text for c in ",:\n") else text

    pairs: list[tuple[str, object]] = []
    if steps is not None:
        pairs.append(("Steps", steps))
    if guidance_scale is not None:
        pairs.append(("CFG scale", f"{guidance_scale:g}"))
    pairs += [
        ("Seed", seed if seed is not None else -1),
        ("Size", f"{width}x{height}"),
        ("Model", model),
        ("Provider", provider),
        ("Version", f"atelier {version}"),
    ]
    lines = [prompt]
    if negative_prompt:
        lines.append(f"Negative prompt: {negative_prompt}")
    lines.append(", ".join(f"{key}: {quote(value)}" for key, value in pairs))
    return "\n".join(lines)


def _itxt_chunk(key: str, text: str) -> bytes:
    body = key.encode("latin-1") + b"\x00\x00\x00" + b"\x00\x00" + text.encode("utf-8")
    chunk_type = b"iTXt"
    return struct.pack(">I", len(body)) + chunk_type + body + struct.pack(">I", zlib.crc32(chunk_type + body))


def embed_png_text(png: bytes, texts: dict[str, str]) -> bytes:
    """Insert iTXt chunks right after IHDR without re-encoding the pixels."""
    if not png.startswith(PNG_SIGNATURE):
        raise InvalidImage("Not a PNG.")
    ihdr_end = 8 + 4 + 4 + 13 + 4  # signature, length, type, IHDR data, CRC
    chunks = b"".join(_itxt_chunk(key, value) for key, value in texts.items())
    return png[:ihdr_end] + chunks + png[ihdr_end:]


def as_png_with_metadata(data: bytes, texts: dict[str, str]) -> StoredImageData:
    """Validate provider bytes and return a PNG carrying the given text chunks."""
    image = open_checked(data)
    if image.format == "PNG":
        png = data
    else:
        image = ImageOps.exif_transpose(image)
        if image.mode not in ("RGB", "RGBA", "L", "LA"):
            image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
        out = io.BytesIO()
        image.save(out, "PNG", compress_level=3)
        png = out.getvalue()
    return StoredImageData(png=embed_png_text(png, texts), width=image.width, height=image.height)


def make_thumbnail(png: bytes, size: int) -> bytes:
    """A WebP thumbnail whose longest side is at most `size` pixels."""
    image: Image.Image = Image.open(io.BytesIO(png))
    image.thumbnail((size, size), resample=Image.Resampling.BICUBIC, reducing_gap=2.0)
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    out = io.BytesIO()
    image.save(out, "WEBP", quality=80, method=4)
    return out.getvalue()
