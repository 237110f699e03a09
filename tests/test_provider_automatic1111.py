"""The AUTOMATIC1111 WebUI provider against a local stand-in for the box (pytest-httpserver)."""

from __future__ import annotations

import base64
import io
import json
import socket
import time
from pathlib import Path

import pytest
from PIL import Image as PILImage
from werkzeug import Request, Response

from generator import catalogue
from generator.models import Image, Task
from generator.providers import ProviderError
from generator.providers.automatic1111 import TITLE_HASH_RE as TITLE_HASH
from generator.providers.base import GenerationRequest
from generator.providers.http import DownloadPolicy
from generator.scheduler.inline import run_task

from .factories import TaskFactory

TXT2IMG = "/sdapi/v1/txt2img"
SD_MODELS = "/sdapi/v1/sd-models"
CHECKPOINT = "sd_xl_base_1.0.safetensors [31e35c80fc]"


def png(width: int, height: int, color: str = "teal") -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def webui_reply(images: list[bytes], seeds: list[int]) -> dict:
    info = {"seed": seeds[0], "all_seeds": seeds, "width": 512, "sampler_name": "Euler a", "infotexts": ["…"]}
    return {"images": [b64(image) for image in images], "parameters": {}, "info": json.dumps(info)}


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).rglob("*") if p.is_file())


class Recorder:
    """A handler that answers with a fixed reply and keeps what it was sent."""

    def __init__(self, body: dict | str, status: int = 200) -> None:
        self.body, self.status = body, status
        self.requests: list[Request] = []

    def __call__(self, request: Request) -> Response:
        self.requests.append(request)
        text = self.body if isinstance(self.body, str) else json.dumps(self.body)
        return Response(text, status=self.status, content_type="application/json")

    @property
    def json(self) -> dict:
        return json.loads(self.requests[-1].get_data())


@pytest.fixture
def webui(httpserver, configure_provider):
    """configure(**values) -> the provider, with its BASE_URL at the local stand-in."""

    def configure(**values):
        return configure_provider("automatic1111", BASE_URL=httpserver.url_for(""), **values)

    return configure


def answer(httpserver, body: dict | str, status: int = 200) -> Recorder:
    recorder = Recorder(body, status)
    httpserver.expect_request(TXT2IMG, method="POST").respond_with_handler(recorder)
    return recorder


def run(user, **fields) -> Task:
    task = TaskFactory(owner=user, provider="automatic1111", **{"model": "default", **fields})
    run_task(str(task.pk))
    task.refresh_from_db()
    return task


# --- configuration and models ----------------------------------------------------------------


def test_it_is_offered_only_once_a_base_url_is_set(configure_provider):
    assert configure_provider("automatic1111") is None
    assert configure_provider("automatic1111", BASE_URL="http://gpu-box:7860") is not None


def test_without_models_it_offers_the_current_checkpoint_with_webui_limits(webui):
    [model] = webui().models()
    assert (model.id, model.label) == ("default", "Current checkpoint")
    assert (model.min_size, model.max_size, model.size_multiple, model.max_images) == (64, 2048, 8, 4)
    assert model.supports_negative_prompt and model.supports_seed and model.max_seed == 4294967295
    assert model.supports_steps and model.supports_guidance
    assert model.size_error(2048, 64) is None and model.size_error(2056, 512) and model.size_error(516, 512)


def test_configured_checkpoints_are_offered_in_order_with_readable_labels(webui):
    provider = webui(MODELS=[CHECKPOINT, "dreamshaper_8"])
    assert [(m.id, m.label) for m in provider.models()] == [
        (CHECKPOINT, "sd_xl_base_1.0.safetensors"),
        ("dreamshaper_8", "dreamshaper_8"),
    ]
    assert all(m.max_images == 4 and m.supports_steps for m in provider.models())


def test_the_box_may_be_private_and_plain_http(configure_provider):
    provider = configure_provider("automatic1111", BASE_URL="http://gpu-box:7860/")
    assert provider.download_policy == DownloadPolicy(allow_private=True, trusted_origin="http://gpu-box:7860")
    assert provider.timeout == (10.0, 240.0)  # generations queue behind each other on one GPU


# --- the request -----------------------------------------------------------------------------


def test_it_sends_the_whole_txt2img_body(webui, httpserver, user):
    webui(SAMPLER="DPM++ 2M", STEPS=30)
    recorder = answer(httpserver, webui_reply([png(512, 384)] * 2, [77, 78]))
    task = run(
        user,
        prompt="a red fox",
        negative_prompt="blurry",
        width=512,
        height=384,
        num_images=2,
        seed=77,
        steps=12,
        guidance_scale=4.5,
    )
    assert task.status == Task.Status.COMPLETED, task.error_message
    [request] = recorder.requests
    assert (request.method, request.path) == ("POST", TXT2IMG)
    assert request.headers["Content-Type"] == "application/json"
    assert "Authorization" not in request.headers
    sent = recorder.json
    # The call's own name, by which /sdapi/v1/progress tells it from other callers' (1.6+).
    assert sent.pop("force_task_id").startswith("atelier-")
    assert sent == {
        "prompt": "a red fox",
        "negative_prompt": "blurry",
        "seed": 77,
        "width": 512,
        "height": 384,
        "steps": 12,
        "cfg_scale": 4.5,
        "sampler_name": "DPM++ 2M",
        "batch_size": 2,
        "n_iter": 1,
        "send_images": True,
        "save_images": False,
    }


def test_unset_seed_steps_and_guidance_fall_back_to_random_and_the_defaults(webui, httpserver, user):
    webui()
    recorder = answer(httpserver, webui_reply([png(64, 64)], [5]))
    run(user, width=64, height=64, seed=None, steps=None, guidance_scale=None)
    body = recorder.json
    assert (body["seed"], body["steps"], body["cfg_scale"], body["sampler_name"]) == (-1, 25, 7.0, "Euler a")
    assert "override_settings" not in body


def test_a_configured_checkpoint_is_switched_to_for_this_call_only(webui, httpserver, user):
    webui(MODELS=[CHECKPOINT])
    recorder = answer(httpserver, webui_reply([png(64, 64)], [5]))
    assert run(user, model=CHECKPOINT, width=64, height=64).status == Task.Status.COMPLETED
    assert recorder.json["override_settings"] == {"sd_model_checkpoint": CHECKPOINT}
    assert recorder.json["override_settings_restore_afterwards"] is True


def test_basic_auth_is_sent_when_username_and_password_are_set(webui, httpserver, user):
    webui(USERNAME="atelier", PASSWORD="s3cret:pass")
    recorder = answer(httpserver, webui_reply([png(64, 64)], [5]))
    run(user, width=64, height=64)
    expected = "Basic " + base64.b64encode(b"atelier:s3cret:pass").decode()
    assert recorder.requests[0].headers["Authorization"] == expected


@pytest.mark.parametrize("half", [{"USERNAME": "atelier"}, {"PASSWORD": "s3cret"}])
def test_half_of_the_credentials_is_never_sent(webui, httpserver, user, half):
    webui(**half)
    recorder = answer(httpserver, webui_reply([png(64, 64)], [5]))
    run(user, width=64, height=64)
    assert "Authorization" not in recorder.requests[0].headers


# --- the response ----------------------------------------------------------------------------


def test_images_and_their_real_seeds_are_stored(webui, httpserver, user, media_root):
    webui()
    answer(httpserver, webui_reply([png(512, 384, "navy"), png(512, 384, "gold")], [3000000001, 3000000002]))
    task = run(user, width=512, height=384, num_images=2, seed=None)
    assert (task.status, task.attempts, task.progress, task.error_code) == (Task.Status.COMPLETED, 1, 100, "")
    assert task.provider_request_id == ""  # the WebUI has no request ids
    images = task.ordered_images
    assert [image.seed for image in images] == [3000000001, 3000000002]
    assert [PILImage.open(image.file.path).getpixel((0, 0)) for image in images] == [(0, 0, 128), (255, 215, 0)]
    assert len(files_under(media_root)) == 4


def test_extra_images_before_the_batch_such_as_a_grid_are_dropped(webui, httpserver, user):
    webui()
    grid = png(128, 64, "white")
    answer(httpserver, webui_reply([grid, png(64, 64, "red"), png(64, 64, "blue")], [10, 11]))
    task = run(user, width=64, height=64, num_images=2)
    assert task.status == Task.Status.COMPLETED
    images = task.ordered_images
    assert [(image.width, image.height, image.seed) for image in images] == [(64, 64, 10), (64, 64, 11)]
    assert PILImage.open(images[0].file.path).getpixel((0, 0)) == (255, 0, 0)


def test_seeds_count_up_from_info_seed_when_all_seeds_is_missing(webui, httpserver, user):
    webui()
    reply = {"images": [b64(png(64, 64))] * 2, "info": json.dumps({"seed": 41})}
    answer(httpserver, reply)
    task = run(user, width=64, height=64, num_images=2, seed=None)
    assert [image.seed for image in task.ordered_images] == [41, 42]


def test_an_unreadable_info_leaves_random_seeds_unknown(webui, httpserver, user):
    webui()
    answer(httpserver, {"images": [b64(png(64, 64))], "info": "not json"})
    task = run(user, width=64, height=64, seed=None)
    assert task.status == Task.Status.COMPLETED
    assert task.ordered_images[0].seed is None


def test_data_url_images_from_forks_are_accepted(webui, httpserver, user):
    webui()
    data_url = "data:image/png;base64," + b64(png(64, 64))
    answer(httpserver, {"images": [data_url], "info": json.dumps({"all_seeds": [9]})})
    task = run(user, width=64, height=64)
    assert task.status == Task.Status.COMPLETED and task.ordered_images[0].seed == 9


@pytest.mark.parametrize(
    ("reply", "code", "message"),
    [
        ({"images": [], "info": "{}"}, "provider_error", "The WebUI returned 0 of 1 images."),
        ("<html>proxy login</html>", "provider_error", "The WebUI answered without any images."),
        ({"images": ["%%% not base64"], "info": "{}"}, "invalid_image", "an image Atelier could not decode."),
        ({"images": [b64(b"<html>")], "info": "{}"}, "invalid_image", "not a PNG, JPEG or WebP"),
    ],
)
def test_an_unusable_answer_fails_at_once_and_stores_nothing(webui, httpserver, user, media_root, reply, code, message):
    webui()
    answer(httpserver, reply)
    task = run(user, width=64, height=64)
    assert (task.status, task.error_code, task.attempts) == (Task.Status.FAILED, code, 1)
    assert message in task.error_message
    assert files_under(media_root) == [] and not Image.objects.exists()


# --- errors ----------------------------------------------------------------------------------


def webui_error(error: str, detail: str = "", errors: str = "") -> dict:
    """The body of the WebUI's exception handler."""
    return {"error": error, "detail": detail, "body": "", "errors": errors}


ADMIN_CHECK_AUTH = "An administrator needs to check AUTOMATIC1111_USERNAME and AUTOMATIC1111_PASSWORD."
ASKS_FOR_AUTH = "The WebUI asks for a username and password (it runs with --api-auth)"
NO_API = (
    "The WebUI at this address has no API. It must be started with --api, "
    "and AUTOMATIC1111_BASE_URL must point at the WebUI itself."
)
VALIDATION_ERROR = {"detail": [{"loc": ["body", "width"], "msg": "value is not a valid integer", "type": "type_error"}]}


@pytest.mark.parametrize(
    ("status", "body", "config", "code", "message"),
    [
        pytest.param(
            401,
            {"detail": "Incorrect username or password"},
            {"USERNAME": "u", "PASSWORD": "p"},
            "authentication_failed",
            "The WebUI refused the username/password. " + ADMIN_CHECK_AUTH,
            id="wrong-credentials",
        ),
        pytest.param(
            401,
            {"detail": "Not authenticated"},
            {},
            "authentication_failed",
            ASKS_FOR_AUTH + ". An administrator needs to set AUTOMATIC1111_USERNAME and AUTOMATIC1111_PASSWORD.",
            id="no-credentials",
        ),
        pytest.param(
            401,
            {"detail": "Not authenticated"},
            {"USERNAME": "u"},
            "authentication_failed",
            ASKS_FOR_AUTH + ", but AUTOMATIC1111_PASSWORD is not set. An administrator needs to set it.",
            id="half-the-credentials",
        ),
        pytest.param(
            404,
            webui_error("HTTPException", "Sampler not found"),
            {"SAMPLER": "Euler z"},
            "invalid_request",
            "The WebUI does not know the configured sampler (Sampler not found). "
            "An administrator needs to check AUTOMATIC1111_SAMPLER.",
            id="unknown-sampler",
        ),
        pytest.param(404, {"detail": "Not Found"}, {}, "invalid_request", NO_API, id="started-without-api"),
        pytest.param(
            404, webui_error("HTTPException", "Not Found"), {}, "invalid_request", NO_API, id="wrong-base-path"
        ),
        pytest.param(
            422,
            webui_error("HTTPException", "Script not found"),
            {},
            "invalid_request",
            "The WebUI did not accept these settings (Script not found).",
            id="unknown-script",
        ),
        pytest.param(
            422,
            VALIDATION_ERROR,
            {},
            "invalid_request",
            "The WebUI did not accept these settings (width: value is not a valid integer).",
            id="validation-error",
        ),
        pytest.param(
            500,
            webui_error("OutOfMemoryError", "", "CUDA out of memory. Tried to allocate 9.00 GiB"),
            {},
            "invalid_request",
            "The GPU ran out of memory making this picture. Try a smaller size or fewer images.",
            id="out-of-memory",
        ),
    ],
)
def test_permanent_errors_fail_at_once(webui, httpserver, user, media_root, status, body, config, code, message):
    webui(**config)
    answer(httpserver, body, status)
    task = run(user, width=64, height=64)
    assert (task.status, task.error_code, task.error_message) == (Task.Status.FAILED, code, message)
    assert task.attempts == 1 and len(httpserver.log) == 1
    assert files_under(media_root) == []


def test_a_missing_checkpoint_is_reported_as_such(webui, httpserver, user):
    webui(MODELS=["gone.safetensors"])
    answer(httpserver, webui_error("HTTPException", "Model not found"), 404)
    task = run(user, model="gone.safetensors", width=64, height=64)
    assert task.error_code == "model_not_found"
    assert task.error_message == "The WebUI does not have this checkpoint (Model not found)."


def test_other_server_errors_are_retried_then_fail(webui, httpserver, user, settings, media_root):
    settings.PROVIDER_MAX_ATTEMPTS = 3
    webui()
    answer(httpserver, webui_error("RuntimeError", "", "Expected all tensors to be on the same device"), 500)
    task = run(user, width=64, height=64)
    assert (task.status, task.error_code, task.attempts) == (Task.Status.FAILED, "provider_unavailable", 3)
    assert task.error_message == "The provider had a temporary problem (Expected all tensors to be on the same device)."
    assert len(httpserver.log) == 3 and files_under(media_root) == []


def test_a_server_error_then_success_completes(webui, httpserver, user):
    webui()
    httpserver.expect_ordered_request(TXT2IMG, method="POST").respond_with_data("Bad Gateway", status=502)
    httpserver.expect_ordered_request(TXT2IMG, method="POST").respond_with_json(webui_reply([png(64, 64)], [8]))
    task = run(user, width=64, height=64)
    assert (task.status, task.attempts) == (Task.Status.COMPLETED, 2)
    assert task.ordered_images[0].seed == 8


def test_a_box_that_is_down_is_a_transient_connection_error(configure_provider, user, settings):
    settings.PROVIDER_MAX_ATTEMPTS = 2
    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    configure_provider("automatic1111", BASE_URL=f"http://127.0.0.1:{port}")
    task = run(user, width=64, height=64)
    assert (task.status, task.error_code, task.attempts) == (Task.Status.FAILED, "connection_error", 2)
    assert task.error_message == "Atelier could not reach the provider."


def test_a_generation_slower_than_the_timeout_is_retried_then_fails(webui, httpserver, user, settings, media_root):
    settings.PROVIDER_MAX_ATTEMPTS = 3
    webui(TIMEOUT_SECONDS=0.1)

    def slow(request: Request) -> Response:
        time.sleep(0.2)
        return Response(json.dumps(webui_reply([png(64, 64)], [1])), content_type="application/json")

    httpserver.expect_request(TXT2IMG, method="POST").respond_with_handler(slow)
    task = run(user, width=64, height=64)
    assert (task.status, task.error_code, task.attempts) == (Task.Status.FAILED, "timeout", 3)
    assert files_under(media_root) == []
    # The one-thread stand-in is still answering the abandoned calls: let it finish them,
    # so they reach no later test (and show every attempt really reached the box).
    deadline = time.monotonic() + 2
    while len(httpserver.log) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(httpserver.log) == 3


# --- check() ---------------------------------------------------------------------------------


def sd_models(*titles: str) -> list[dict]:
    return [
        {"title": title, "model_name": title.split(".")[0], "hash": None, "filename": f"/m/{title}", "config": None}
        for title in titles
    ]


def test_check_asks_for_the_model_list_with_credentials(webui, httpserver):
    provider = webui(USERNAME="atelier", PASSWORD="pw", MODELS=[CHECKPOINT, "dreamshaper_8"])
    httpserver.expect_request(
        SD_MODELS, method="GET", headers={"Authorization": "Basic " + b64(b"atelier:pw")}
    ).respond_with_json(sd_models(CHECKPOINT, "dreamshaper_8.safetensors"))
    provider.check()
    assert len(httpserver.log) == 1


def test_check_lists_the_boxs_checkpoints_so_a_missing_one_is_retired(webui, httpserver, db):
    provider = webui(MODELS=[CHECKPOINT, "dreamshaper_8.safetensors", "typo_model"])
    httpserver.expect_request(SD_MODELS).respond_with_json(sd_models(CHECKPOINT, "dreamshaper_8.safetensors"))
    listing = provider.check()
    # A title is known with and without its hash; "typo_model" is not there.
    assert {CHECKPOINT, TITLE_HASH.sub("", CHECKPOINT), "dreamshaper_8.safetensors"} <= listing
    assert "typo_model" not in listing
    [result] = catalogue.refresh(["automatic1111"])
    assert result.retired == ("typo_model",)
    assert [model.id for model in catalogue.offered_models("automatic1111", provider)] == [
        CHECKPOINT,
        "dreamshaper_8.safetensors",
    ]


def test_without_models_the_loaded_checkpoint_is_never_retired(webui, httpserver, db):
    provider = webui()
    httpserver.expect_request(SD_MODELS).respond_with_json(sd_models(CHECKPOINT))
    assert "default" in provider.check()


@pytest.mark.parametrize(
    ("status", "body", "code", "transient"),
    [
        (401, {"detail": "Incorrect username or password"}, "authentication_failed", False),
        (404, {"detail": "Not Found"}, "invalid_request", False),
        (503, "Service Unavailable", "provider_unavailable", True),
    ],
)
def test_check_raises_a_provider_error_when_the_box_is_not_usable(webui, httpserver, status, body, code, transient):
    provider = webui()
    httpserver.expect_request(SD_MODELS).respond_with_data(
        body if isinstance(body, str) else json.dumps(body), status=status, content_type="application/json"
    )
    with pytest.raises(ProviderError) as caught:
        provider.check()
    assert (caught.value.code, caught.value.transient) == (code, transient)


def test_models_never_calls_the_box(webui, httpserver):
    webui(MODELS=[CHECKPOINT]).models()
    assert httpserver.log == []


def test_generate_reports_progress_once_done(webui, httpserver):
    provider = webui()
    answer(httpserver, webui_reply([png(64, 64)], [1]))
    seen: list[int] = []
    request = GenerationRequest(prompt="p", model="default", width=64, height=64)
    [result] = provider.generate(request, progress=seen.append)
    assert seen == [100] and result.seed == 1 and result.data.startswith(b"\x89PNG")


# --- Retry-After -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status,body,code",
    [
        (429, "Too Many Requests", "rate_limited"),  # e.g. a rate-limiting proxy in front of the box
        (503, {"error": "ServiceUnavailable", "detail": "queue is full"}, "provider_unavailable"),
    ],
)
def test_a_retry_after_header_is_kept_on_the_transient_error(webui, httpserver, status, body, code):
    provider = webui()
    text = body if isinstance(body, str) else json.dumps(body)
    httpserver.expect_request(TXT2IMG, method="POST").respond_with_data(
        text, status=status, headers={"Retry-After": "15"}
    )
    with pytest.raises(ProviderError) as raised:
        provider.generate(GenerationRequest(prompt="p", model="default", width=64, height=64))
    assert raised.value.transient and raised.value.code == code
    assert raised.value.retry_after == 15


def test_a_server_error_without_retry_after_names_no_wait(webui, httpserver):
    provider = webui()
    answer(httpserver, {"error": "RuntimeError", "detail": "boom"}, status=500)
    with pytest.raises(ProviderError) as raised:
        provider.generate(GenerationRequest(prompt="p", model="default", width=64, height=64))
    assert raised.value.transient and raised.value.retry_after is None
