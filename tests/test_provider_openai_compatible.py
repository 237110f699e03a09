"""The OpenAI-style provider in its three flavours (OpenAI, Ark Seedream, SiliconFlow),
against a local server that plays each vendor's requests, answers and errors."""

from __future__ import annotations

import base64
import io
import time
from pathlib import Path

import pytest
from PIL import Image as PILImage
from werkzeug import Request, Response

from generator.models import Image, Task
from generator.providers import ProviderError
from generator.providers.base import GenerationRequest
from generator.providers.errors import CODES_WITH_DETAIL, MESSAGES
from generator.providers.flavors.ark import SEEDREAM_4, SEEDREAM_5_FLASH, SEEDREAM_5_LITE, SEEDREAM_5_PRO
from generator.scheduler.inline import run_task

from .factories import TaskFactory

KEY = "sk-test-key"
GENERATIONS = "/v1/images/generations"
ARK_FIXED = {"response_format": "b64_json", "watermark": False}  # sent on every Ark call


def png(width: int = 32, height: int = 24, color: str = "teal") -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def b64_png(color: str = "teal") -> str:
    return base64.b64encode(png(color=color)).decode()


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).rglob("*") if p.is_file())


def run(user, provider: str, model: str, **fields) -> Task:
    task = TaskFactory(owner=user, provider=provider, model=model, **fields)
    run_task(str(task.pk))
    task.refresh_from_db()
    return task


def generation_requests(httpserver) -> list[Request]:
    return [request for request, _ in httpserver.log if request.path == GENERATIONS]


def bodies(httpserver) -> list[dict]:
    return [request.get_json() for request in generation_requests(httpserver)]


def answer(httpserver, body: dict, status: int = 200, headers: dict | None = None) -> None:
    httpserver.expect_request(GENERATIONS, method="POST").respond_with_json(body, status=status, headers=headers)


@pytest.fixture(autouse=True)
def attempts(settings):
    settings.PROVIDER_MAX_ATTEMPTS = 3


@pytest.fixture
def configure(configure_provider, httpserver):
    def configure(name: str, **values):
        defaults = {"API_KEY": KEY, "BASE_URL": httpserver.url_for("/v1"), "SELF_HOSTED": True}
        return configure_provider(name, **{**defaults, **values})

    return configure


def assert_failed(task: Task, code: str, message: str, *, attempts: int, media_root) -> None:
    assert task.status == Task.Status.FAILED
    assert (task.error_code, task.error_message, task.attempts) == (code, message, attempts)
    assert not Image.objects.filter(task=task).exists() and files_under(media_root) == []


# --- configuration and models ---------------------------------------------------------------


def test_each_service_offers_its_default_models_with_their_limits(configure):
    openai = {m.id: m for m in configure("openai").models()}
    assert list(openai) == ["gpt-image-2.6-flare", "gpt-image-2.6-sunburst", "gpt-image-2"]
    for model in openai.values():
        assert not model.supports_seed and not model.supports_negative_prompt and model.max_images == 10
        assert model.size_error(1536, 1024) is None and model.size_error(3840, 1280) is None
        assert model.size_error(1000, 1000)  # not a multiple of 16

    seedream = {m.id: m for m in configure("ark").models()}
    assert list(seedream) == [SEEDREAM_5_LITE, SEEDREAM_5_PRO, SEEDREAM_5_FLASH]
    lite = seedream[SEEDREAM_5_LITE]
    assert (lite.min_pixels, lite.max_pixels, lite.max_aspect_ratio) == (2560 * 1440, 4096 * 4096, 16)
    for model in seedream.values():
        assert not model.supports_seed and not model.supports_guidance and not model.supports_negative_prompt

    kolors, qwen = configure("siliconflow").models()
    assert qwen.id == "Qwen/Qwen-Image" and qwen.steps_range == (1, 100)
    assert kolors.id == "Kwai-Kolors/Kolors" and (960, 1280) in kolors.sizes
    assert kolors.max_seed == 9_999_999_999 and kolors.supports_negative_prompt
    assert kolors.supports_steps and kolors.supports_guidance and kolors.max_images == 4


def test_labels_name_the_service(configure):
    assert configure("openai").label == "OpenAI"
    assert configure("ark").label == "VolcEngine Ark (Seedream)"
    assert configure("siliconflow").label == "SiliconFlow"


def test_the_models_list_selects_and_orders_and_unknown_ids_get_careful_limits(configure):
    ark = {m.id: m for m in configure("ark", MODELS=[SEEDREAM_4, "ep-20250101-abcde", SEEDREAM_4]).models()}
    assert list(ark) == [SEEDREAM_4, "ep-20250101-abcde"]
    assert ark[SEEDREAM_4].min_pixels == 1280 * 720 and ark[SEEDREAM_4].max_pixels == 4096 * 4096
    assert ark[SEEDREAM_4].max_aspect_ratio == 16 and not ark[SEEDREAM_4].supports_seed
    assert ark[SEEDREAM_4].size_error(4096, 4096) is None and ark[SEEDREAM_4].size_error(1024, 512)
    endpoint = ark["ep-20250101-abcde"]  # the family's documented range, not the narrowest model's
    assert not endpoint.supports_seed and not endpoint.supports_guidance
    assert endpoint.size_error(1280, 720) is None and endpoint.size_error(4096, 4096) is None
    assert endpoint.size_error(1024, 512) and endpoint.size_error(4096, 4100)

    flux = configure("siliconflow", MODELS=["Qwen/Qwen-Image", "black-forest-labs/FLUX.1-schnell"]).models()
    assert [m.id for m in flux] == ["Qwen/Qwen-Image", "black-forest-labs/FLUX.1-schnell"]
    assert flux[0].sizes[0] == (1328, 1328) and flux[0].supports_guidance
    # The general limits of SiliconFlow's page: every documented size, steps, negative prompt.
    assert (1024, 1024) in flux[1].sizes and (1328, 1328) in flux[1].sizes and not flux[1].supports_guidance
    assert flux[1].supports_negative_prompt and flux[1].steps_range == (1, 100)


def test_it_is_not_offered_without_an_api_key(configure_provider):
    assert configure_provider("siliconflow", API_KEY="") is None


def test_flavor_points_an_instance_at_another_dialect(configure, httpserver):
    provider = configure("openai", FLAVOR="siliconflow")
    assert provider.label == "openai (SiliconFlow-compatible)"
    assert [m.id for m in provider.models()] == ["Kwai-Kolors/Kolors", "Qwen/Qwen-Image"]
    answer(httpserver, {"images": [{"url": httpserver.url_for("/a.png")}], "seed": 3})
    request = GenerationRequest(prompt="a fox", model="Kwai-Kolors/Kolors", width=1024, height=1024, seed=3)
    provider.generate(request)
    assert bodies(httpserver)[0]["image_size"] == "1024x1024"


def test_an_unknown_flavor_turns_the_instance_off(configure):
    assert configure("openai", FLAVOR="midjourney") is None


# --- OpenAI ---------------------------------------------------------------------------------


def test_a_gpt_image_model_makes_several_images_in_one_call_without_response_format(
    configure, httpserver, user, media_root
):
    configure("openai")
    answer(
        httpserver,
        {"created": 1, "data": [{"b64_json": b64_png("red")}, {"b64_json": b64_png("blue")}]},
        headers={"x-request-id": "req_abc"},
    )
    task = run(user, "openai", "gpt-image-2", width=1536, height=1024, num_images=2, seed=77, negative_prompt="fog")
    assert task.status == Task.Status.COMPLETED and task.provider_request_id == "req_abc"
    (sent,) = generation_requests(httpserver)
    assert sent.headers["Authorization"] == f"Bearer {KEY}"
    assert sent.headers["Content-Type"] == "application/json"
    # No seed, no negative prompt, and no response_format (GPT image models always answer base64).
    assert sent.get_json() == {"model": "gpt-image-2", "prompt": task.prompt, "size": "1536x1024", "n": 2}
    assert [image.seed for image in task.ordered_images] == [None, None]
    assert len(files_under(media_root)) == 4


def test_dall_e_3_makes_one_image_per_call_as_base64(configure, httpserver, user):
    configure("openai", MODELS=["dall-e-3"])  # retired by OpenAI; still understood by gateways
    answer(httpserver, {"data": [{"b64_json": b64_png(), "revised_prompt": "a fox"}]})
    task = run(user, "openai", "dall-e-3", width=1792, height=1024, num_images=2)
    assert task.status == Task.Status.COMPLETED and task.images.count() == 2
    expected = {"model": "dall-e-3", "prompt": task.prompt, "size": "1792x1024", "response_format": "b64_json"}
    assert bodies(httpserver) == [expected, expected]


def test_progress_is_reported_per_call(configure, httpserver):
    provider = configure("openai", MODELS=["dall-e-3"])
    answer(httpserver, {"data": [{"b64_json": b64_png()}]})
    seen: list[int] = []
    results = provider.generate(
        GenerationRequest(prompt="a fox", model="dall-e-3", width=1024, height=1024, num_images=2), progress=seen.append
    )
    assert seen == [50, 100] and all(result.data == png() for result in results)


def test_an_unknown_openai_model_gets_no_response_format_and_its_link_is_downloaded(configure, httpserver, user):
    configure("openai", MODELS=["gateway-image"])
    answer(httpserver, {"data": [{"url": httpserver.url_for("/blob/1.png")}]})
    httpserver.expect_request("/blob/1.png").respond_with_data(png(), content_type="image/png")
    task = run(user, "openai", "gateway-image", width=1024, height=1024)
    assert task.status == Task.Status.COMPLETED
    assert bodies(httpserver) == [{"model": "gateway-image", "prompt": task.prompt, "size": "1024x1024", "n": 1}]


OPENAI_ERRORS = [
    # (status, error code, error type, our code, transient)
    (400, "content_policy_violation", "image_generation_user_error", "content_rejected", False),
    (429, "insufficient_quota", "insufficient_quota", "quota_exhausted", False),
    (400, "billing_hard_limit_reached", "invalid_request_error", "quota_exhausted", False),
    (401, "invalid_api_key", "invalid_request_error", "authentication_failed", False),
    (403, None, "invalid_request_error", "permission_denied", False),
    (429, "rate_limit_exceeded", "requests", "rate_limited", True),
    (409, None, "invalid_request_error", "provider_unavailable", True),  # a lock timeout: the SDK retries it
    (500, None, "server_error", "provider_unavailable", True),
    (503, None, "server_error", "provider_unavailable", True),
]


@pytest.mark.parametrize("status,vendor_code,kind,code,transient", OPENAI_ERRORS)
def test_openai_errors_end_the_task_as_documented(
    configure, httpserver, user, media_root, status, vendor_code, kind, code, transient
):
    configure("openai")
    vendor = {"message": "Vendor says no.", "type": kind, "param": None, "code": vendor_code}
    answer(httpserver, {"error": vendor}, status=status, headers={"x-request-id": "req_err"})
    task = run(user, "openai", "gpt-image-2", width=1024, height=1024)
    message = MESSAGES[code] + (" (Vendor says no.)" if code in CODES_WITH_DETAIL else "")
    assert_failed(task, code, message, attempts=3 if transient else 1, media_root=media_root)
    assert task.provider_request_id == "req_err"
    assert len(generation_requests(httpserver)) == task.attempts


def test_an_openai_bad_parameter_shows_the_vendors_reason_but_never_the_key(configure, httpserver, user, media_root):
    configure("openai")
    answer(
        httpserver,
        {
            "error": {
                "message": "Invalid value: 'hd'.\nSupported values are: 'low'.",
                "type": "invalid_request_error",
                "param": "quality",
                "code": "invalid_value",
            }
        },
        status=400,
    )
    task = run(user, "openai", "gpt-image-2", width=1024, height=1024)
    message = MESSAGES["invalid_request"] + " (Invalid value: 'hd'. Supported values are: 'low'.)"
    assert_failed(task, "invalid_request", message, attempts=1, media_root=media_root)

    answer_401 = {"error": {"message": f"Incorrect API key provided: {KEY}.", "code": "invalid_api_key"}}
    httpserver.clear()
    answer(httpserver, answer_401, status=401)
    task = run(user, "openai", "gpt-image-2", width=1024, height=1024)
    assert task.error_code == "authentication_failed" and KEY not in task.error_message


def test_an_answer_that_is_not_json_is_classified_by_status(configure, httpserver, user, media_root):
    configure("openai")
    httpserver.expect_request(GENERATIONS).respond_with_data("<html>Bad gateway</html>", status=502)
    task = run(user, "openai", "gpt-image-2", width=1024, height=1024)
    assert_failed(task, "provider_unavailable", MESSAGES["provider_unavailable"], attempts=3, media_root=media_root)


def test_a_wrong_base_url_is_told_apart_from_an_unknown_model(configure, httpserver, user, media_root):
    configure("siliconflow")
    httpserver.expect_request(GENERATIONS).respond_with_data("404 page not found", status=404)
    task = run(user, "siliconflow", "Kwai-Kolors/Kolors", width=1024, height=1024)
    assert_failed(task, "provider_error", MESSAGES["provider_error.no_such_path"], attempts=1, media_root=media_root)


def test_an_unreadable_success_fails_without_retrying(configure, httpserver, user, media_root):
    configure("openai")
    httpserver.expect_request(GENERATIONS).respond_with_data("surprise", status=200)
    task = run(user, "openai", "gpt-image-2", width=1024, height=1024)
    assert_failed(task, "provider_error", MESSAGES["provider_error.unreadable"], attempts=1, media_root=media_root)


def test_fewer_images_than_asked_for_fail_the_task(configure, httpserver, user, media_root):
    configure("openai")
    answer(httpserver, {"data": [{"b64_json": b64_png()}]})
    task = run(user, "openai", "gpt-image-2", width=1024, height=1024, num_images=2)
    assert_failed(task, "provider_error", MESSAGES["provider_error.too_few_images"], attempts=1, media_root=media_root)


@pytest.mark.parametrize(
    "service,model,size",
    [
        ("openai", "gpt-image-2", (1024, 1024)),
        ("ark", "doubao-seedream-5-0-pro-260628", (2048, 2048)),
        ("siliconflow", "Kwai-Kolors/Kolors", (1024, 1024)),
    ],
)
def test_a_slow_paid_call_is_not_sent_again(configure, httpserver, user, media_root, service, model, size):
    # The vendor may still make (and bill) the pictures of a call whose answer never came.
    configure(service, TIMEOUT_SECONDS=0.1)

    def slow(request: Request) -> Response:
        time.sleep(0.15)
        return Response("{}", content_type="application/json")

    httpserver.expect_request(GENERATIONS).respond_with_handler(slow)
    started = time.monotonic()
    task = run(user, service, model, width=size[0], height=size[1])
    message = MESSAGES["timeout.not_resent"] % {"seconds": "0.1"}
    assert_failed(task, "timeout", message, attempts=1, media_root=media_root)
    assert time.monotonic() - started < 2
    # The one-threaded server is still working through the abandoned call; let it finish
    # so it is not logged into the next test.
    deadline = time.monotonic() + 2
    while not httpserver.log and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(generation_requests(httpserver)) == 1


def test_check_lists_models_with_the_key(configure, httpserver):
    provider = configure("openai")
    httpserver.expect_request("/v1/models", headers={"Authorization": f"Bearer {KEY}"}).respond_with_json({"data": []})
    assert provider.check() == frozenset()
    httpserver.clear()
    httpserver.expect_request("/v1/models").respond_with_json({"error": {"code": "invalid_api_key"}}, status=401)
    with pytest.raises(ProviderError) as raised:
        provider.check()
    assert raised.value.code == "authentication_failed" and not raised.value.transient


def test_check_reports_a_wrong_base_url(configure, httpserver):
    httpserver.expect_request("/v1/models").respond_with_data("404 page not found", status=404)
    with pytest.raises(ProviderError) as raised:
        configure("siliconflow").check()
    assert raised.value.code == "provider_error" and raised.value.message == MESSAGES["provider_error.no_such_path"]


def test_check_lists_ark_models_at_its_models_route(configure, httpserver):
    httpserver.expect_request("/v1/models", method="GET").respond_with_json({"object": "list", "data": []})
    assert configure("ark").check() == frozenset()
    assert [request.path for request, _ in httpserver.log] == ["/v1/models"]


# --- VolcEngine Ark (Seedream) --------------------------------------------------------------


def test_seedream_makes_one_image_per_call_and_sends_no_seed_or_guidance(configure, httpserver, user, media_root):
    configure("ark")
    answer(
        httpserver,
        {
            "model": SEEDREAM_5_LITE,
            "created": 1,
            "data": [{"b64_json": b64_png(), "size": "2848x1600"}],
            "usage": {"generated_images": 1},
        },
        headers={"x-request-id": "2026ark01"},
    )
    task = run(
        user,
        "ark",
        SEEDREAM_5_LITE,
        width=2848,
        height=1600,
        num_images=2,
        seed=41,
        guidance_scale=5.5,
        negative_prompt="fog",
    )
    assert task.status == Task.Status.COMPLETED and task.provider_request_id == "2026ark01"
    assert generation_requests(httpserver)[0].headers["Authorization"] == f"Bearer {KEY}"
    # No n, no seed, no guidance_scale, no negative_prompt: the current Seedream page has none.
    sent = {"model": SEEDREAM_5_LITE, "prompt": task.prompt, "size": "2848x1600", **ARK_FIXED}
    assert bodies(httpserver) == [sent, sent]
    assert [image.seed for image in task.ordered_images] == [None, None]
    assert len(files_under(media_root)) == 4


def test_seedream_4_and_endpoints_send_the_same_body(configure, httpserver, user):
    configure("ark", MODELS=[SEEDREAM_4, "ep-20250101-abcde"])
    answer(httpserver, {"data": [{"b64_json": b64_png()}]})
    task = run(user, "ark", SEEDREAM_4, width=2560, height=1440, seed=5, guidance_scale=3)
    endpoint_task = run(user, "ark", "ep-20250101-abcde", width=1280, height=720, seed=5)
    assert task.status == endpoint_task.status == Task.Status.COMPLETED
    assert bodies(httpserver) == [
        {"model": SEEDREAM_4, "prompt": task.prompt, "size": "2560x1440", **ARK_FIXED},
        {"model": "ep-20250101-abcde", "prompt": endpoint_task.prompt, "size": "1280x720", **ARK_FIXED},
    ]
    assert task.images.get().seed is None


def test_an_ark_link_is_downloaded_when_the_answer_carries_urls(configure, httpserver, user, media_root):
    configure("ark")
    answer(httpserver, {"data": [{"url": httpserver.url_for("/tos/1.jpeg"), "size": "1024x1024"}]})
    httpserver.expect_request("/tos/1.jpeg").respond_with_data(png(), content_type="image/png")
    task = run(user, "ark", SEEDREAM_5_PRO, width=1024, height=1024, seed=9)
    assert task.status == Task.Status.COMPLETED and task.images.get().seed is None
    assert len(files_under(media_root)) == 2


def test_an_ark_link_to_a_private_address_is_refused(configure, httpserver, user, media_root):
    configure("ark", SELF_HOSTED=False)
    answer(httpserver, {"data": [{"url": httpserver.url_for("/tos/1.jpeg")}]})
    task = run(user, "ark", SEEDREAM_5_PRO, width=1024, height=1024)
    assert task.status == Task.Status.FAILED and task.error_code == "unsafe_image_url" and task.attempts == 1
    assert not Image.objects.exists() and files_under(media_root) == []
    assert [request.path for request, _ in httpserver.log] == [GENERATIONS]


def test_a_failed_image_inside_data_fails_the_task(configure, httpserver, user, media_root):
    configure("ark")
    failed = {"error": {"code": "OutputImageSensitiveContentDetected", "message": "The output may be sensitive."}}
    answer(httpserver, {"data": [failed]}, headers={"x-request-id": "2026ark02"})
    task = run(user, "ark", SEEDREAM_5_PRO, width=1024, height=1024)
    assert_failed(task, "output_rejected", MESSAGES["output_rejected"], attempts=1, media_root=media_root)
    assert task.provider_request_id == "2026ark02"


ARK_ERRORS = [
    # (status, Ark code, our catalogue key, transient): volcengine.com/docs/82379/1299023
    (400, "InputTextSensitiveContentDetected", "content_rejected", False),
    (400, "SensitiveContentDetected.SevereViolation", "content_rejected", False),
    (400, "InputTextSensitiveContentDetected.PolicyViolation", "content_rejected.intellectual_property", False),
    (400, "OutputImageSensitiveContentDetected", "output_rejected", False),
    # "currently closed or temporarily unavailable": retried, not taken for an unknown model
    (400, "InvalidEndpoint.ClosedEndpoint", "provider_unavailable.endpoint_closed", True),
    (401, "AuthenticationError", "authentication_failed", False),
    (403, "AccountOverdueError", "quota_exhausted.billing", False),
    (403, "AccessDenied", "permission_denied.http_403", False),
    (404, "InvalidEndpointOrModel.NotFound", "model_not_found", False),
    (404, "ModelNotOpen", "permission_denied.model_activation", False),
    (429, "RateLimitExceeded.EndpointRPMExceeded", "rate_limited", True),
    # The console's usage cap (safe-experience mode): an administrator must act, so no retry.
    (429, "SetLimitExceeded", "quota_exhausted.usage_cap", False),
    (429, "ServerOverloaded", "provider_unavailable", True),
    (500, "InternalServiceError", "provider_unavailable", True),
]


@pytest.mark.parametrize("status,vendor_code,key,transient", ARK_ERRORS)
def test_ark_errors_end_the_task_as_documented(
    configure, httpserver, user, media_root, status, vendor_code, key, transient
):
    configure("ark")
    vendor = {"code": vendor_code, "message": "Vendor says no. Request id: 2026ark03", "param": "", "type": "Bad"}
    answer(httpserver, {"error": vendor}, status=status, headers={"x-request-id": "2026ark03"})
    task = run(user, "ark", SEEDREAM_5_PRO, width=1024, height=1024)
    code = key.partition(".")[0]
    detail = " (Vendor says no. Request id: 2026ark03)" if code in CODES_WITH_DETAIL else ""
    assert_failed(task, code, MESSAGES[key] + detail, attempts=3 if transient else 1, media_root=media_root)
    assert task.provider_request_id == "2026ark03"


def test_an_ark_invalid_parameter_shows_the_vendors_reason(configure, httpserver, user, media_root):
    configure("ark")
    vendor = {"code": "InvalidParameter", "message": "The parameter `size` is not valid.", "param": "size"}
    answer(httpserver, {"error": vendor}, status=400)
    task = run(user, "ark", SEEDREAM_5_PRO, width=1024, height=1024)
    message = MESSAGES["invalid_request"] + " (The parameter `size` is not valid.)"
    assert_failed(task, "invalid_request", message, attempts=1, media_root=media_root)


def test_sizes_outside_the_models_range_fail_before_any_call(configure, httpserver, user, media_root):
    configure("ark")
    task = run(user, "ark", SEEDREAM_5_LITE, width=1024, height=1024)  # under 5.0 lite's 3,686,400 pixels
    message = "Seedream 5.0 Lite needs at least 3,686,400 pixels (width × height)."
    assert_failed(task, "invalid_request", message, attempts=1, media_root=media_root)
    task = run(user, "ark", SEEDREAM_5_PRO, width=2048, height=2304)  # over 5.0 pro's 4,624,220
    assert task.error_code == "invalid_request" and "at most 4,624,220 pixels" in task.error_message
    task = run(user, "ark", SEEDREAM_5_PRO, width=4352, height=256)  # 17:1
    assert task.error_code == "invalid_request" and "aspect ratio of at most 16:1" in task.error_message
    assert httpserver.log == []


# --- SiliconFlow ----------------------------------------------------------------------------


def test_kolors_makes_a_batch_in_one_call_and_the_links_are_downloaded(configure, httpserver, user, media_root):
    configure("siliconflow")
    answer(
        httpserver,
        {
            "images": [{"url": httpserver.url_for("/out/1.png")}, {"url": httpserver.url_for("/out/2.png")}],
            "timings": {"inference": 1.2},
            "seed": 9_876_543_210,
        },
        headers={"x-siliconcloud-trace-id": "trace-kolors"},
    )
    httpserver.expect_request("/out/1.png").respond_with_data(png(color="red"), content_type="image/png")
    httpserver.expect_request("/out/2.png").respond_with_data(png(color="blue"), content_type="image/png")
    task = run(
        user,
        "siliconflow",
        "Kwai-Kolors/Kolors",
        width=960,
        height=1280,
        num_images=2,
        seed=9_876_543_210,
        negative_prompt="fog",
        steps=30,
        guidance_scale=6.5,
    )
    assert task.status == Task.Status.COMPLETED and task.provider_request_id == "trace-kolors"
    (sent,) = generation_requests(httpserver)
    assert sent.headers["Authorization"] == f"Bearer {KEY}"
    assert sent.get_json() == {
        "model": "Kwai-Kolors/Kolors",
        "prompt": task.prompt,
        "image_size": "960x1280",
        "batch_size": 2,
        "seed": 9_876_543_210,
        "negative_prompt": "fog",
        "num_inference_steps": 30,
        "guidance_scale": 6.5,
    }
    # The batch reports one seed; the others' seeds are not documented.
    assert [image.seed for image in task.ordered_images] == [9_876_543_210, None]
    assert len(files_under(media_root)) == 4


def test_the_returned_seed_is_recorded_when_the_seed_was_random(configure, httpserver, user):
    configure("siliconflow")
    httpserver.expect_request("/out/1.png").respond_with_data(png(), content_type="image/png")
    answer(httpserver, {"images": [{"url": httpserver.url_for("/out/1.png")}], "seed": 4242})
    task = run(user, "siliconflow", "Kwai-Kolors/Kolors", width=1024, height=1024, seed=None)
    assert 0 <= bodies(httpserver)[0]["seed"] <= 9_999_999_999
    assert task.images.get().seed == 4242


def test_qwen_image_makes_one_image_per_call_with_cfg(configure, httpserver, user):
    configure("siliconflow", MODELS=["Qwen/Qwen-Image"])
    httpserver.expect_request("/out/q.png").respond_with_data(png(), content_type="image/png")

    def echo_seed(request: Request) -> Response:
        seed = request.get_json()["seed"]
        return Response(
            f'{{"images": [{{"url": "{httpserver.url_for("/out/q.png")}"}}], "seed": {seed}}}',
            content_type="application/json",
        )

    httpserver.expect_request(GENERATIONS).respond_with_handler(echo_seed)
    task = run(
        user,
        "siliconflow",
        "Qwen/Qwen-Image",
        width=1664,
        height=928,
        num_images=2,
        seed=10,
        guidance_scale=4,
        steps=50,
    )
    assert task.status == Task.Status.COMPLETED
    common = {
        "model": "Qwen/Qwen-Image",
        "prompt": task.prompt,
        "image_size": "1664x928",
        "num_inference_steps": 50,
        "cfg": 4.0,
    }
    assert bodies(httpserver) == [{**common, "seed": 10}, {**common, "seed": 11}]
    assert [image.seed for image in task.ordered_images] == [10, 11]


def test_an_openai_style_data_array_is_accepted_too(configure, httpserver, user):
    configure("siliconflow")
    answer(httpserver, {"data": [{"b64_json": b64_png()}], "seed": 12})
    task = run(user, "siliconflow", "Kwai-Kolors/Kolors", width=1024, height=1024, seed=12)
    assert task.status == Task.Status.COMPLETED and task.images.get().seed == 12


def test_a_siliconflow_link_to_a_private_address_is_refused(configure, httpserver, user, media_root):
    configure("siliconflow", SELF_HOSTED=False)
    answer(httpserver, {"images": [{"url": httpserver.url_for("/out/1.png")}], "seed": 1})
    task = run(user, "siliconflow", "Kwai-Kolors/Kolors", width=1024, height=1024)
    assert task.status == Task.Status.FAILED and task.error_code == "unsafe_image_url"
    assert not Image.objects.exists() and files_under(media_root) == []
    assert [request.path for request, _ in httpserver.log] == [GENERATIONS]


SILICONFLOW_ERRORS = [
    # (status, body message, body code, our catalogue key, transient): docs.siliconflow.cn/faqs/error-code
    (400, "Model does not exist. Please check it carefully.", 20012, "model_not_found", False),
    (400, "image_size is invalid", 20015, "invalid_request", False),
    (400, "The prompt contains sensitive content.", 20040, "content_rejected", False),
    (401, "Token is invalid.", 30014, "authentication_failed", False),
    (401, "Invalid token", None, "authentication_failed", False),
    (403, "Real-name verification is required to use this model.", 30011, "permission_denied.http_403", False),
    (403, "Sorry, your account balance is insufficient", 30001, "quota_exhausted", False),
    (402, "Sorry, your account balance is insufficient", 30001, "quota_exhausted", False),
    (403, "The model is disabled.", 30003, "permission_denied", False),
    (429, "Request was rejected due to rate limiting. Details: IPM limit reached.", None, "rate_limited", True),
    (503, "Model service overloaded. Please try again later.", 50505, "provider_unavailable", True),
    (504, "Gateway timeout", 50504, "provider_unavailable", True),
    (500, "Unknown error", 50500, "provider_unavailable", True),
]


@pytest.mark.parametrize("status,vendor_message,vendor_code,key,transient", SILICONFLOW_ERRORS)
def test_siliconflow_errors_end_the_task_as_documented(
    configure, httpserver, user, media_root, status, vendor_message, vendor_code, key, transient
):
    configure("siliconflow")
    body = {"code": vendor_code, "message": vendor_message, "data": None}
    answer(httpserver, body, status=status, headers={"x-siliconcloud-trace-id": "trace-err"})
    task = run(user, "siliconflow", "Kwai-Kolors/Kolors", width=1024, height=1024)
    code = key.partition(".")[0]
    message = MESSAGES[key] + (f" ({vendor_message})" if code in CODES_WITH_DETAIL else "")
    assert_failed(task, code, message, attempts=3 if transient else 1, media_root=media_root)
    assert task.provider_request_id == "trace-err"


# --- Retry-After -----------------------------------------------------------------------------------

RETRY_AFTER_CASES = [
    # (service, model, status, body, header, our code, seconds)
    (
        "openai",
        "gpt-image-2",
        429,
        {"error": {"message": "Slow down.", "code": "rate_limit_exceeded"}},
        "20",
        "rate_limited",
        20,
    ),
    (
        "openai",
        "gpt-image-2",
        503,
        {"error": {"message": "Overloaded.", "type": "server_error"}},
        "4",
        "provider_unavailable",
        4,
    ),
    (
        "ark",
        SEEDREAM_5_PRO,
        429,
        {"error": {"code": "RateLimitExceeded.EndpointIPMExceeded", "message": "IPM"}},
        "60",
        "rate_limited",
        60,
    ),
    (
        "siliconflow",
        "Kwai-Kolors/Kolors",
        429,
        {"code": 50001, "message": "IPM limit reached."},
        "0",
        "rate_limited",
        0,
    ),
]


@pytest.mark.parametrize("service,model,status,body,header,code,seconds", RETRY_AFTER_CASES)
def test_a_retry_after_header_is_kept_on_the_transient_error(
    configure, httpserver, service, model, status, body, header, code, seconds
):
    provider = configure(service)
    answer(httpserver, body, status=status, headers={"Retry-After": header})
    with pytest.raises(ProviderError) as raised:
        provider.generate(GenerationRequest(prompt="p", model=model, width=1024, height=1024))
    assert raised.value.transient and raised.value.code == code
    assert raised.value.retry_after == seconds
    assert len(generation_requests(httpserver)) == 1


def test_a_retry_after_date_is_turned_into_seconds(configure, httpserver):
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    provider = configure("openai")
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    answer(httpserver, {"error": {"code": "rate_limit_exceeded"}}, status=429, headers={"Retry-After": later})
    with pytest.raises(ProviderError) as raised:
        provider.generate(GenerationRequest(prompt="p", model="gpt-image-2", width=1024, height=1024))
    assert raised.value.transient and 80 <= raised.value.retry_after <= 90


def test_without_retry_after_a_transient_error_names_no_wait(configure, httpserver):
    provider = configure("openai")
    answer(httpserver, {"error": {"code": "rate_limit_exceeded"}}, status=429)
    with pytest.raises(ProviderError) as raised:
        provider.generate(GenerationRequest(prompt="p", model="gpt-image-2", width=1024, height=1024))
    assert raised.value.transient and raised.value.retry_after is None


def test_retry_after_does_not_make_a_permanent_error_transient(configure, httpserver):
    provider = configure("openai")
    body = {"error": {"message": "You exceeded your current quota.", "code": "insufficient_quota"}}
    answer(httpserver, body, status=429, headers={"Retry-After": "20"})
    with pytest.raises(ProviderError) as raised:
        provider.generate(GenerationRequest(prompt="p", model="gpt-image-2", width=1024, height=1024))
    assert not raised.value.transient and raised.value.code == "quota_exhausted"
    assert raised.value.retry_after is None
