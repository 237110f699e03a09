"""Making a picture in the browser: a dropped PNG fills the form, a double click makes one task,
a refusal shows next to the Generate button and goes with the next accepted submission."""

from __future__ import annotations

import io

import pytest
from django.utils import timezone
from PIL import Image as PILImage
from PIL import PngImagePlugin
from playwright.sync_api import expect

from generator import services
from generator.lib import imaging
from generator.models import Image, Task
from tests.factories import PASSWORD, TaskFactory, UserFactory

from .conftest import marker_survives, set_marker, sign_in

pytestmark = pytest.mark.browser

A1111_PARAMETERS = (
    "a red fox in tall grass, golden hour\n"
    "Negative prompt: blurry, lowres\n"
    "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 512x768, "
    'Model hash: 31e35c80fc, Model: sd_xl_base_1.0, Lora hashes: "fox: abc, grass: def", Version: v1.10.1'
)


def plain_png(size=(64, 48)) -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", size, (40, 90, 160)).save(out, "PNG")
    return out.getvalue()


def a1111_png(*, compressed: bool = False) -> bytes:
    """What AUTOMATIC1111 saves: a tEXt `parameters` chunk (zTXt when compressed, as other tools write)."""
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", A1111_PARAMETERS, zip=compressed)
    out = io.BytesIO()
    PILImage.new("RGB", (64, 48), (200, 120, 40)).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def atelier_png(owner) -> bytes:
    """A picture as Atelier stores it (generator.services): `parameters` and `atelier` iTXt chunks."""
    task = TaskFactory(
        owner=owner,
        prompt="灯塔 at dawn, gulls",
        negative_prompt="text, watermark",
        width=320,
        height=192,
        steps=28,
        guidance_scale=6.5,
        seed=None,
    )
    image = Image(task=task, owner=owner, index=0, seed=987654, created_at=timezone.now())
    png = imaging.as_png_with_metadata(plain_png(), services._png_texts(task, image)).png
    task.delete()  # the picture stands on its own, as a downloaded file does
    return png


def drop_png(page, data: bytes, name: str) -> None:
    """A synthetic drop on the form, carrying a real file built from the PNG's bytes."""
    # create.js shows the importer once its listeners are on: a drop before that (a loaded
    # machine runs the deferred scripts after the heading is painted) would be lost.
    expect(page.locator("#png-import")).to_be_visible()
    page.evaluate(
        """([bytes, name]) => {
            const file = new File([new Uint8Array(bytes)], name, {type: "image/png"});
            const transfer = new DataTransfer();
            transfer.items.add(file);
            const target = document.getElementById("generate-form");
            for (const type of ["dragenter", "dragover", "drop"]) {
                target.dispatchEvent(new DragEvent(type, {dataTransfer: transfer, bubbles: true, cancelable: true}));
            }
        }""",
        [list(data), name],
    )


def test_dropping_an_automatic1111_png_fills_the_form_and_says_what_it_did_not_use(page, live_server):
    user = UserFactory()
    sign_in(page, live_server, user, PASSWORD)
    expect(page.locator("#png-import")).to_be_visible()
    drop_png(page, a1111_png(), "fox.png")

    result = page.locator("#png-import-result")
    expect(result).to_contain_text("Filled in from fox.png")
    expect(page.locator("#id_prompt")).to_have_value("a red fox in tall grass, golden hour")
    expect(page.locator("#id_negative_prompt")).to_have_value("blurry, lowres")
    expect(page.locator("#id_width")).to_have_value("512")
    expect(page.locator("#id_height")).to_have_value("768")
    expect(page.locator("#id_steps")).to_have_value("20")
    expect(page.locator("#id_scale")).to_have_value("7")
    expect(page.locator("#id_seed")).to_have_value("42")
    expect(page.locator("#id_random_seed")).not_to_be_checked()
    expect(page.locator("#id_size")).to_have_value("")  # no preset is 512×768: "Custom"
    # What Atelier cannot use is named, not dropped silently.
    expect(result).to_contain_text("Sampler: Euler a")
    expect(result).to_contain_text("sd_xl_base_1.0 (not offered here)")
    expect(result).to_contain_text("Lora hashes: fox: abc, grass: def")

    # The filled form generates what the picture says.
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#task-list .task-card")).to_have_count(1)
    task = Task.objects.get(owner=user)
    assert (task.prompt, task.negative_prompt, task.width, task.height) == (
        "a red fox in tall grass, golden hour",
        "blurry, lowres",
        512,
        768,
    )
    assert (task.steps, task.guidance_scale, task.seed) == (20, 7.0, 42)
    assert page.errors == []


def test_dropping_an_atelier_png_fills_the_form_with_its_own_settings(page, live_server):
    user = UserFactory()
    png = atelier_png(user)
    sign_in(page, live_server, user, PASSWORD)
    drop_png(page, png, "atelier-1.png")

    expect(page.locator("#png-import-result")).to_contain_text("Filled in from atelier-1.png")
    expect(page.locator("#png-import-result")).not_to_contain_text("Not used")
    expect(page.locator("#id_prompt")).to_have_value("灯塔 at dawn, gulls")
    expect(page.locator("#id_negative_prompt")).to_have_value("text, watermark")
    expect(page.locator("#id_model")).to_have_value("offline:sketch-v1")
    expect(page.locator("#id_width")).to_have_value("320")
    expect(page.locator("#id_height")).to_have_value("192")
    expect(page.locator("#id_steps")).to_have_value("28")
    expect(page.locator("#id_scale")).to_have_value("6.5")
    expect(page.locator("#id_seed")).to_have_value("987654")  # the picture's own seed
    expect(page.locator("details.advanced")).to_have_attribute("open", "")
    assert page.errors == []


def test_a_png_without_settings_and_a_file_that_is_no_png_say_so(page, live_server):
    sign_in(page, live_server, UserFactory(), PASSWORD)
    page.locator("#id_prompt").fill("kept as typed")
    drop_png(page, plain_png(), "holiday.png")
    expect(page.locator("#png-import-result")).to_contain_text(
        "holiday.png carries no generation settings Atelier can read."
    )
    expect(page.locator("#id_prompt")).to_have_value("kept as typed")
    # The file picker (phones, keyboards) reads the same way.
    page.locator("#png-import-file").set_input_files(
        files=[{"name": "notes.png", "mimeType": "image/png", "buffer": b"not a picture"}]
    )
    expect(page.locator("#png-import-result")).to_contain_text("notes.png is not a PNG file")
    page.locator("#png-import-file").set_input_files(
        files=[{"name": "fox.png", "mimeType": "image/png", "buffer": a1111_png(compressed=True)}]
    )
    expect(page.locator("#id_prompt")).to_have_value("a red fox in tall grass, golden hour")
    assert page.errors == []


def test_a_double_click_on_generate_makes_one_task(page, live_server, settings):
    # Each request takes a second (the offline provider runs inline in tests): the second click
    # lands while the first is in flight.
    settings.OFFLINE_DELAY_SECONDS = 1.0
    user = UserFactory()
    sign_in(page, live_server, user, PASSWORD)
    set_marker(page)
    page.get_by_label("Prompt", exact=True).fill("double click test")
    button = page.locator("#generate-form button[type=submit]")
    button.dblclick()
    expect(button).to_be_disabled()
    expect(button.locator(".busy-label")).to_be_visible()
    expect(button.locator(".busy-label")).to_have_text("Generating…")
    expect(button.locator(".idle-label")).to_be_hidden()
    cards = page.locator("#task-list .task-card")
    expect(cards).to_have_count(1)
    expect(button).to_be_enabled()
    expect(button.locator(".busy-label")).to_be_hidden()
    expect(button).to_have_accessible_name("Generate")
    page.wait_for_timeout(500)
    expect(cards).to_have_count(1)
    assert Task.objects.filter(owner=user).count() == 1

    # Pressing Generate again, on purpose and with the same fields, makes another task (the form
    # got a fresh one-time token with the first card).
    button.click()
    expect(cards).to_have_count(2)
    assert Task.objects.filter(owner=user).count() == 2
    assert marker_survives(page)
    assert page.errors == []


def test_a_429_shows_next_to_the_button_and_goes_with_the_next_accepted_submission(
    page, live_server, settings, ratelimit_clock
):
    settings.GENERATE_RATE = "1/m"
    user = UserFactory()
    sign_in(page, live_server, user, PASSWORD)
    prompt = page.get_by_label("Prompt", exact=True)
    generate = page.get_by_role("button", name="Generate")

    # Rejected submissions do not use up the rate: an empty prompt twice, then one accepted.
    for _ in range(2):
        generate.click()
        expect(page.locator("#generate-form .errors")).to_contain_text("Describe the picture you want.")
    prompt.fill("first")
    generate.click()
    expect(page.locator("#task-list .task-card")).to_have_count(1)
    expect(page.locator("#generate-form .errors")).to_have_count(0)

    # A bad seed shows by its field; the next submission over the rate clears it.
    page.locator("#id_seed").fill("abc")
    generate.click()
    expect(page.locator("#generate-form .errors")).to_contain_text("Enter a whole number for the seed")
    page.locator("#id_random_seed").check()
    page.evaluate("() => window.scrollTo(0, 0)")
    generate.click()
    problem = page.locator("#form-problem")
    expect(problem).to_be_visible()
    expect(problem).to_contain_text("You are generating faster than this server allows.")
    expect(page.locator("#generate-form .errors")).to_have_count(0)  # the stale seed error went
    # It sits right by the button, and on screen.
    box, button_box = problem.bounding_box(), generate.bounding_box()
    assert 0 <= box["y"] - (button_box["y"] + button_box["height"]) < 40, (box, button_box)
    expect(problem).to_be_in_viewport()
    assert Task.objects.filter(owner=user).count() == 1

    settings.GENERATE_RATE = "5/m"  # the window moves on (a new rate, new counters)
    prompt.fill("second")
    generate.click()
    expect(page.locator("#task-list .task-card")).to_have_count(2)
    expect(problem).to_be_hidden()
    assert Task.objects.filter(owner=user).count() == 2
    assert page.errors == []


def test_presets_fill_the_size_boxes_and_the_lock_keeps_the_shape(page, live_server):
    user = UserFactory()
    sign_in(page, live_server, user, PASSWORD)
    width, height, preset = page.locator("#id_width"), page.locator("#id_height"), page.locator("#id_size")
    expect(page.locator("#size-help")).to_have_text("This model: 64 to 2048 pixels a side, in steps of 8.")
    expect(width).to_have_attribute("step", "8")
    preset.select_option("1280x720")
    expect(width).to_have_value("1280")
    expect(height).to_have_value("720")
    page.get_by_label("Keep aspect ratio").check()
    width.fill("640")
    expect(height).to_have_value("360")
    expect(preset).to_have_value("")  # no preset is 640×360: "Custom"
    width.fill("1283")
    width.blur()  # leaving the box rounds to the model's step
    expect(width).to_have_value("1280")
    expect(height).to_have_value("720")
    expect(preset).to_have_value("1280x720")
    page.get_by_label("Keep aspect ratio").uncheck()
    height.fill("448")
    width.fill("640")
    page.get_by_label("Prompt", exact=True).fill("a wide harbour")
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#task-list .task-card")).to_have_count(1)
    task = Task.objects.get(owner=user)
    assert (task.width, task.height) == (640, 448)
    assert page.errors == []


def test_a_server_failure_shows_next_to_the_button_once(page, live_server):
    sign_in(page, live_server, UserFactory(), PASSWORD)
    page.route(
        f"{live_server.url}/",
        lambda route: route.fulfill(status=500, body="") if route.request.method == "POST" else route.continue_(),
    )
    page.get_by_label("Prompt", exact=True).fill("a lantern")
    page.get_by_role("button", name="Generate").click()
    problem = page.locator("#form-problem")
    expect(problem).to_have_text("The server answered 500. Please try again.")
    expect(problem).to_be_in_viewport()
    expect(page.locator("#problem")).to_have_count(0)  # not a second time at the top of the page
    expect(page.get_by_role("button", name="Generate")).to_be_enabled()
    assert page.errors == []
