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
# The largest picture any offered model makes is 4096×4096 (Seedream 4.0, Jimeng 4.0: both
# bound the area by 4096²), so a quarter more covers providers that round a size up, and
# nothing else: an 8000×8000 image (64 Mpx, ~550 MB of worker memory) is refused unread.
MAX_PIXELS = 4096 * 4096 * 5 // 4  # 20,971,520 pixels
# What decoding one image may hold at once: twice the largest decoded picture (Pillow keeps
# RGB, RGBA and CMYK at 4 bytes a pixel). With the raw bytes (MAX_IMAGE_BYTES) and the PNG
# made from them this keeps a worker of about 55 MB under 300 MB for any image that passes
# (tests/security/test_image_memory.py measures it). Encodings that need more than one extra
# copy while decoding (decode_bytes) get a lower pixel ceiling from it.
MAX_DECODE_BYTES = MAX_PIXELS * 4 * 2


class InvalidImage(ValueError):
    """The bytes are not an image we accept (format, size or corruption)."""

    def __init__(self, message: str | Promise, params: dict[str, object] | None = None) -> None:
        self.reason = Reason(message, params)  # shown on the task, in its reader's language
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
            _refuse_costly(image)  # from the header alone, before a pixel is decoded
            image.load()
    except InvalidImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidImage(_("The provider returned an image too large to store.")) from exc
    except Exception as exc:  # Pillow raises many types for corrupt input
        raise InvalidImage(_("The provider returned a damaged image.")) from exc
    return image


def decode_bytes(image: Image.Image) -> int:
    """An upper bound of the memory that decoding and normalising this opened, not yet loaded,
    image holds at its peak: the picture (4 bytes a pixel) and the largest transient beside it."""
    pixels = image.width * image.height
    if image.format == "WEBP":
        # Measured with Pillow 13: its animation decoder keeps a canvas and the previous
        # frame, returns the frame as bytes, and Pillow copies them: ~17 bytes a pixel.
        return pixels * 17
    transient = 0
    if image.format == "JPEG":
        transient = 4  # the rotated copy exif_transpose makes, or the RGB copy of a CMYK JPEG
        if image.info.get("progressive"):
            # libjpeg keeps every DCT coefficient (2 bytes a sample) until the last scan, for
            # each component at its own sampling; it frees them before any copy is made.
            layers = getattr(image, "layer", [])
            h_max = max((h for _id, h, _v, _tq in layers), default=1)
            v_max = max((v for _id, _h, v, _tq in layers), default=1)
            samples = sum(h * v / (h_max * v_max) for _id, h, v, _tq in layers) or len(image.getbands())
            transient = max(transient, round(samples * 2))
    # A PNG is stored as it came; only its thumbnail is converted, after it has been shrunk.
    return pixels * (4 + transient)


def _refuse_costly(image: Image.Image) -> None:
    size = {"width": image.width, "height": image.height}
    if image.width * image.height > MAX_PIXELS:
        raise InvalidImage(
            _(
                "The provider returned an image too large to store: %(width)s×%(height)s pixels, "
                "more than the %(megapixels)s megapixels Atelier accepts."
            ),
            {**size, "megapixels": f"{MAX_PIXELS / 1e6:.1f}"},
        )
    if (cost := decode_bytes(image)) > MAX_DECODE_BYTES:
        raise InvalidImage(
            _(
                "The provider returned an image too large to store: decoding this %(width)s×%(height)s "
                "%(format)s would take %(needed)s MB of memory, more than the %(limit)s MB allowed."
            ),
            {**size, "format": image.format, "needed": cost // 2**20, "limit": MAX_DECODE_BYTES // 2**20},
        )


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
    view = memoryview(png)  # slices of a view are not copies: one copy of a large PNG, not three
    return b"".join((view[:ihdr_end], chunks, view[ihdr_end:]))


def as_png_with_metadata(data: bytes, texts: dict[str, str]) -> StoredImageData:
    """Validate provider bytes and return a PNG carrying the given text chunks."""
    image = open_checked(data)
    if image.format == "PNG":
        png = data
    else:
        # In place: exif_transpose otherwise returns a full copy even when nothing turns.
        ImageOps.exif_transpose(image, in_place=True)
        if image.mode not in ("RGB", "RGBA", "L", "LA"):
            image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
        out = io.BytesIO()
        image.save(out, "PNG", compress_level=3)
        png = out.getvalue()
    width, height = image.size
    del image  # the decoded pixels go before the PNG is copied once more below
    return StoredImageData(png=embed_png_text(png, texts), width=width, height=height)


def make_thumbnail(png: bytes, size: int) -> bytes:
    """A WebP thumbnail whose longest side is at most `size` pixels."""
    image: Image.Image = Image.open(io.BytesIO(png))
    # With a reducing_gap, thumbnail() first asks a JPEG for a draft (libjpeg decodes at 1/2,
    # 1/4 or 1/8 scale), and shrinks anything else by whole factors with reduce() before the
    # bicubic pass, so no full-size intermediate is made beyond the decoded original.
    image.thumbnail((size, size), resample=Image.Resampling.BICUBIC, reducing_gap=2.0)
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    out = io.BytesIO()
    image.save(out, "WEBP", quality=80, method=4)
    return out.getvalue()


# Chunks that carry words rather than pixels: ours (the prompt and settings) and any a provider wrote.
TEXT_CHUNKS = (b"tEXt", b"iTXt", b"zTXt", b"eXIf")


def without_text(png: bytes) -> bytes:
    """The same PNG without its text and EXIF chunks (the pixels are copied, not re-encoded)."""
    if not png.startswith(PNG_SIGNATURE):
        raise InvalidImage("Not a PNG.")
    kept, position = [PNG_SIGNATURE], len(PNG_SIGNATURE)
    while position + 8 <= len(png):
        (length,) = struct.unpack(">I", png[position : position + 4])
        end = position + 12 + length  # length, type, data, CRC
        if png[position + 4 : position + 8] not in TEXT_CHUNKS:
            kept.append(png[position:end])
        position = end
    return b"".join(kept)
