from __future__ import annotations

import io
import time

import pytest
from PIL import Image, ImageChops, ImageStat

from generator.providers.base import GenerationRequest
from generator.providers.offline import OfflineProvider


def request(**overrides) -> GenerationRequest:
    values = {"prompt": "a lighthouse at dawn", "model": "sketch-v1", "width": 320, "height": 240, "seed": 7}
    return GenerationRequest(**{**values, **overrides})


def decode(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


def test_same_inputs_give_the_same_bytes():
    provider = OfflineProvider()
    first = provider.generate(request())[0]
    second = provider.generate(request())[0]
    assert first.data == second.data
    assert first.seed == second.seed == 7


def test_different_prompts_are_visibly_different():
    provider = OfflineProvider()
    fox = decode(provider.generate(request(prompt="a red fox in the snow"))[0].data)
    ship = decode(provider.generate(request(prompt="a pirate ship at night"))[0].data)
    mean_difference = sum(ImageStat.Stat(ImageChops.difference(fox, ship)).mean) / 3
    assert mean_difference > 20  # out of 255: clearly different pictures, not noise


def test_different_seeds_give_different_pictures():
    provider = OfflineProvider()
    assert provider.generate(request(seed=1))[0].data != provider.generate(request(seed=2))[0].data


def test_it_draws_at_the_requested_size():
    image = decode(OfflineProvider().generate(request(width=512, height=128))[0].data)
    assert image.size == (512, 128)


def test_several_images_get_consecutive_seeds():
    results = OfflineProvider().generate(request(num_images=3, seed=41))
    assert [r.seed for r in results] == [41, 42, 43]
    assert len({r.data for r in results}) == 3


def test_a_random_seed_is_chosen_and_reported():
    results = OfflineProvider().generate(request(seed=None, num_images=2))
    assert results[0].seed is not None and 0 <= results[0].seed < 2**32
    assert results[1].seed == (results[0].seed + 1) % 2**32


def test_the_delay_setting_slows_it_down():
    started = time.monotonic()
    OfflineProvider(delay_seconds=0.3).generate(request(num_images=2))
    assert time.monotonic() - started >= 0.3


def test_the_delay_includes_the_drawing(monkeypatch):
    from generator.providers import offline

    clock = [100.0]
    slept: list[float] = []
    draw = offline.draw_sketch

    def slow_draw(*args):
        clock[0] += 0.3  # this picture took 0.3 s to draw
        return draw(*args)

    monkeypatch.setattr(offline.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(offline.time, "sleep", slept.append)
    monkeypatch.setattr(offline, "draw_sketch", slow_draw)
    OfflineProvider(delay_seconds=2.0).generate(request(num_images=2))
    assert slept == pytest.approx([0.7, 0.7])  # each picture's 1 s share, less its drawing


def test_progress_is_reported_per_image():
    seen: list[int] = []
    OfflineProvider().generate(request(num_images=2), progress=seen.append)
    assert seen == [50, 100]


def test_it_is_offered_only_when_enabled(settings):
    assert OfflineProvider.from_settings(settings) is not None
    settings.OFFLINE_PROVIDER = False
    assert OfflineProvider.from_settings(settings) is None


def test_a_chinese_prompt_is_drawn_with_a_font_that_has_its_characters():
    from PIL import ImageFont

    from generator.providers.offline import _prompt_font, wide_font_path

    if wide_font_path() is None:
        pytest.skip("no CJK font on this machine (Debian: fonts-noto-cjk)")
    chinese = _prompt_font("海边的灯塔", 20)
    assert isinstance(chinese, ImageFont.FreeTypeFont) and chinese.path == wide_font_path()
    # Pillow's own font has no such glyph; this one draws something of the glyph's own shape.
    assert chinese.getmask("海").getbbox() != chinese.getmask("一").getbbox()
    assert getattr(_prompt_font("a lighthouse on a cliff", 20), "path", None) != wide_font_path()
