"""Memory: what a 25 MB result image costs the process that downloads it.

    python -m bench.memory make-image --dir DIR --out made.json   (DIR/big.png, DIR/small.png)
    python -m bench.memory download --url URL --out result.json

The picture is made in one process and downloaded in another (ru_maxrss is a high-water mark:
anything the process did before would hide the download's own cost). The downloader is
generator.providers.http.download_image, the guarded one the worker uses for provider links,
with the policy of a self-hosted provider (plain http to its own loopback origin).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
from pathlib import Path

import django

# Just under MAX_IMAGE_BYTES (25 MiB): a noise PNG stored without compression.
SIDE = 2950


def make_images(directory: Path) -> dict:
    from PIL import Image

    directory.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8)).save(directory / "small.png")
    noise = Image.frombytes("RGB", (SIDE, SIDE), os.urandom(SIDE * SIDE * 3))
    noise.save(directory / "big.png", "PNG", compress_level=0)
    return {"bytes": (directory / "big.png").stat().st_size}


def max_rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux


def download(url: str, warmup_url: str) -> dict:
    from django.conf import settings

    from generator.providers.http import DownloadPolicy, download_image, origin

    policy = DownloadPolicy(allow_private=True, trusted_origin=origin(url))
    download_image(warmup_url, policy)  # imports, the session and its connection pool, once
    before = max_rss_kb()
    data = download_image(url, policy)
    after = max_rss_kb()
    size = len(data)
    return {
        "file_bytes": size,
        "max_image_bytes": settings.MAX_IMAGE_BYTES,
        "max_rss_before_kb": before,
        "max_rss_after_kb": after,
        "increase_kb": after - before,
        "increase_over_file_size": round((after - before) * 1024 / size, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=("make-image", "download"))
    parser.add_argument("--dir", type=Path)
    parser.add_argument("--url")
    parser.add_argument("--warmup-url")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.what == "make-image":
        result = make_images(args.dir)
    else:
        django.setup()
        result = download(args.url, args.warmup_url)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
