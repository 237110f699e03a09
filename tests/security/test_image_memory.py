"""A provider's picture cannot push a worker past 300 MB (security review, finding 13).

An 8000×8000 JPEG of 1 MB once took a worker to 549 MB. Each measured case runs the worker's
own steps (as_png_with_metadata, then make_thumbnail while the provider's bytes are still
held, as services._store_images does) in a fresh Django process on the largest image of its
kind that the limits let through, and reads that process's peak resident memory.
"""

from __future__ import annotations

import io
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from generator.lib import imaging

ROOT = Path(__file__).resolve().parents[2]
WORKER_BUDGET_MB = 300

# Noise, so neither the provider's bytes nor the PNG made from them compress: the worst case
# for memory besides the decoded pixels. Only as many rows as keep the file within
# MAX_IMAGE_BYTES are noise (the bytes per pixel of noise are measured per kind); the rest
# is one colour.
MAKE = """
import io, os, sys
from PIL import Image

kind, width, height, path, max_bytes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
mode = "RGBA" if kind in ("png", "webp") else "RGB"
bytes_per_pixel = {"jpeg": 0.95, "progressive-jpeg": 0.9, "png": 4.05, "webp": 1.5}[kind]
noisy_rows = min(height, int(max_bytes * 0.9 / (bytes_per_pixel * width)))
picture = Image.new(mode, (width, height), (40, 90, 160, 255))
picture.paste(Image.frombytes(mode, (width, noisy_rows), os.urandom(width * noisy_rows * len(mode))))
if kind == "png":
    picture.save(path, "PNG", compress_level=1)
elif kind == "webp":
    picture.save(path, "WEBP", quality=50, method=0)
else:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: exif_transpose must turn the whole picture
    options = {"progressive": True, "bufsize": width * height * 8} if kind == "progressive-jpeg" else {}
    picture.save(path, "JPEG", quality=90, exif=exif, **options)
"""

# VmHWM is the peak resident memory of this process's own address space. ru_maxrss is not:
# Linux carries it over from the forking parent across exec, so a large pytest process would
# show through.
WORK = """
import re, sys
import django

django.setup()
import django_q.cluster  # noqa: F401  (what a worker has loaded besides: ~8 MB more)
import generator.services  # noqa: F401
from generator.lib import imaging

picture = open(sys.argv[1], "rb").read()
stored = imaging.as_png_with_metadata(picture, {"parameters": "a prompt " * 200})
imaging.make_thumbnail(stored.png, 384)
peak_kb = int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read())[1])
print(stored.width, stored.height, peak_kb // 1024)
"""


def python(script: str, *args: object) -> str:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def sample(kind: str) -> Image.Image:
    """A small image of the kind, opened but not decoded, to read its cost per pixel."""
    out = io.BytesIO()
    fmt = {"png": "PNG", "webp": "WEBP"}.get(kind, "JPEG")
    mode = "RGBA" if kind in ("png", "webp") else "RGB"
    options = {"progressive": True} if kind == "progressive-jpeg" else {}
    Image.new(mode, (64, 64)).save(out, fmt, **options)
    return Image.open(io.BytesIO(out.getvalue()))


def largest_square(kind: str) -> int:
    """The side of the largest square picture of this kind that open_checked accepts."""
    pixels = imaging.MAX_PIXELS
    budget = getattr(imaging, "MAX_DECODE_BYTES", None)  # absent before the decode budget
    if budget is not None:
        per_pixel = imaging.decode_bytes(sample(kind)) / (64 * 64)
        pixels = min(pixels, int(budget / per_pixel))
    return math.isqrt(pixels)


@pytest.mark.subprocess
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from Linux's /proc")
@pytest.mark.parametrize("kind", ["jpeg", "progressive-jpeg", "png", "webp"])
def test_the_largest_permitted_image_keeps_a_worker_under_300_mb(tmp_path, settings, kind):
    side = largest_square(kind)
    path = tmp_path / "picture"
    python(MAKE, kind, side, side, path, settings.MAX_IMAGE_BYTES)
    assert path.stat().st_size <= settings.MAX_IMAGE_BYTES  # a download or b64 body that passes

    width, height, peak_mb = map(int, python(WORK, path).split())

    assert (width, height) == (side, side)
    assert peak_mb < WORKER_BUDGET_MB, f"{kind} {side}×{side}: the worker peaked at {peak_mb} MB"


# --- refused from the header, before decoding ---------------------------------------------


def flat(fmt: str, size: tuple[int, int], **options: object) -> bytes:
    """A picture of one colour: a small file however many pixels it claims."""
    out = io.BytesIO()
    Image.new("RGB", size, (200, 120, 40)).save(out, fmt, **options)
    return out.getvalue()


def test_an_8000_by_8000_jpeg_is_refused_with_its_size_in_the_reason():
    data = flat("JPEG", (8000, 8000))
    assert len(data) < 2_000_000  # the audit's case: about 1 MB on the wire
    with pytest.raises(imaging.InvalidImage) as caught:
        imaging.as_png_with_metadata(data, {})
    assert caught.value.reason.english() == (
        "The provider returned an image too large to store: 8000×8000 pixels, "
        "more than the 21.0 megapixels Atelier accepts."
    )


@pytest.mark.parametrize("size", [(4096, 4096), (4608, 4544), (7088, 2363)])
def test_the_largest_sizes_models_make_are_accepted(size):
    # 4096² is the most any model makes (Seedream 4.0, Jimeng 4.0); Jimeng's 3:1 at that area.
    stored = imaging.as_png_with_metadata(flat("JPEG", size), {})
    assert (stored.width, stored.height) == size


def test_one_pixel_over_the_ceiling_is_refused():
    width = 8192
    height = imaging.MAX_PIXELS // width + 1
    with pytest.raises(imaging.InvalidImage, match="too large to store"):
        imaging.open_checked(flat("PNG", (width, height)))


def test_a_webp_under_the_pixel_ceiling_is_refused_when_decoding_it_would_cost_too_much():
    # libwebp and Pillow hold about four copies of a WebP while decoding it.
    with pytest.raises(imaging.InvalidImage) as caught:
        imaging.open_checked(flat("WEBP", (4096, 4096), quality=10))
    message = caught.value.reason.english()
    assert message.startswith("The provider returned an image too large to store: decoding this 4096×4096 WEBP")
    assert "MB of memory" in message


def test_the_reason_is_stored_untranslated_with_its_numbers():
    with pytest.raises(imaging.InvalidImage) as caught:
        imaging.open_checked(flat("JPEG", (8000, 8000)))
    assert caught.value.reason.params == {"width": 8000, "height": 8000, "megapixels": "21.0"}
