from __future__ import annotations

import io

import pytest
from PIL import Image

from generator.lib import imaging


def png_bytes(size=(64, 48), color=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def test_parameters_are_embedded_in_a1111_format_and_readable():
    text = imaging.a1111_parameters(
        prompt="a cat, sitting",
        negative_prompt="blurry",
        steps=20,
        guidance_scale=7.0,
        seed=42,
        width=64,
        height=48,
        model="sketch-v1",
        provider="offline",
        version="0.1.0",
    )
    stored = imaging.as_png_with_metadata(png_bytes(), {"parameters": text, "atelier": '{"seed": 42}'})
    image = Image.open(io.BytesIO(stored.png))
    image.load()
    assert image.text["parameters"] == (
        "a cat, sitting\nNegative prompt: blurry\n"
        "Steps: 20, CFG scale: 7, Seed: 42, Size: 64x48, Model: sketch-v1, Provider: offline, Version: atelier 0.1.0"
    )
    assert image.text["atelier"] == '{"seed": 42}'
    assert (stored.width, stored.height) == (64, 48)


def test_non_latin_prompts_survive():
    stored = imaging.as_png_with_metadata(png_bytes(), {"parameters": "一只猫在月光下"})
    assert Image.open(io.BytesIO(stored.png)).text["parameters"] == "一只猫在月光下"


def test_jpeg_results_are_stored_as_png():
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (0, 90, 200)).save(out, "JPEG")
    stored = imaging.as_png_with_metadata(out.getvalue(), {"parameters": "x"})
    assert stored.png.startswith(imaging.PNG_SIGNATURE)
    assert Image.open(io.BytesIO(stored.png)).size == (40, 30)


@pytest.mark.parametrize(
    "data",
    [b"<html>not an image</html>", b"", b"GIF89a" + b"\x00" * 40, imaging.PNG_SIGNATURE + b"\x00" * 40],
    ids=["html", "empty", "gif", "truncated-png"],
)
def test_non_images_are_refused(data):
    with pytest.raises(imaging.InvalidImage):
        imaging.as_png_with_metadata(data, {})


def test_decompression_bombs_are_refused():
    # A tiny file that claims to be 20000×20000 pixels.
    bomb = io.BytesIO()
    Image.new("1", (20000, 20000)).save(bomb, "PNG")
    assert len(bomb.getvalue()) < 100_000
    with pytest.raises(imaging.InvalidImage, match="too large"):
        imaging.as_png_with_metadata(bomb.getvalue(), {})


def test_thumbnails_are_small_webp_keeping_the_aspect_ratio():
    thumb = Image.open(io.BytesIO(imaging.make_thumbnail(png_bytes((1200, 600)), 384)))
    assert thumb.format == "WEBP"
    assert thumb.size == (384, 192)


def test_an_exif_rotated_jpeg_is_stored_upright():
    # The rotation is made in place now (no second full-size copy); it must still happen.
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (0, 90, 200)).save(out, "JPEG", exif=exif)
    stored = imaging.as_png_with_metadata(out.getvalue(), {"parameters": "x"})
    assert (stored.width, stored.height) == (30, 40)
    assert Image.open(io.BytesIO(stored.png)).size == (30, 40)


def test_text_chunks_follow_the_header_and_the_pixels_are_untouched():
    png = png_bytes()
    embedded = imaging.embed_png_text(png, {"parameters": "p"})
    assert embedded[:33] == png[:33] and embedded.endswith(png[33:])
    assert embedded[37:41] == b"iTXt"
