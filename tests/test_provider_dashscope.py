"""The DashScope provider against a local stand-in for the API: the exact requests, the
submit-then-poll job, the synchronous route, URL results, the region endpoints, and every
documented error ending the task correctly."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from PIL import Image as PILImage
from werkzeug import Request, Response

from generator.models import Image, Task
from generator.providers import GenerationRequest, PermanentProviderError, ProviderError, TransientProviderError
from generator.providers.dashscope import (
    ERROR_TABLE,
    IMAGE_GENERATION,
    KNOWN_MODELS,
    MAX_SEED,
    MULTIMODAL,
    TEXT2IMAGE,
    generic_model,
    vendor_error,
)
from generator.providers.errors import MESSAGES, TRANSIENT_CODES, Kind, code_of, kind_of
from generator.scheduler.inline import run_task

from .factories import TaskFactory
from .fake_providers import FakeVendor, serving, token

SUBMIT = "/api/v1/services/aigc/text2image/image-synthesis"
SUBMIT_MESSAGES = "/api/v1/services/aigc/image-generation/generation"
SYNC = "/api/v1/services/aigc/multimodal-generation/generation"
JOB = "/api/v1/tasks/task-1"
CANCEL = "/api/v1/tasks/task-1/cancel"
KEY = "sk-test-key"


@pytest.fixture
def dashscope(configure_provider, httpserver):
    """configure(**values) -> the provider, pointed at the local server and polling fast."""

    def configure(**values):
        defaults = {
            "API_KEY": KEY,
            "BASE_URL": httpserver.url_for("/api/v1"),
            "POLL_INTERVAL_SECONDS": 0.01,
            "SELF_HOSTED": True,
        }
        return configure_provider("dashscope", **{**defaults, **values})

    return configure


def png(size: tuple[int, int] = (16, 12)) -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", size, (200, 80, 40)).save(out, "PNG")
    return out.getvalue()


def submitted() -> dict:
    return {"output": {"task_status": "PENDING", "task_id": "task-1"}, "request_id": "req-submit"}


def job(status: str, **output) -> dict:
    return {"output": {"task_id": "task-1", "task_status": status, **output}, "request_id": "req-poll"}


def succeeded(httpserver, count: int = 1) -> dict:
    results = [
        {"url": httpserver.url_for(f"/results/{i}.png"), "orig_prompt": "p", "actual_prompt": "p"} for i in range(count)
    ]
    return job("SUCCEEDED", results=results, task_metrics={"TOTAL": count, "SUCCEEDED": count, "FAILED": 0})


def as_response(answer: dict | Response) -> Response:
    if isinstance(answer, Response):
        return answer
    return Response(json.dumps(answer), status=200, content_type="application/json")


def error(status: int, code: str, message: str) -> Response:
    body = {"code": code, "message": message, "request_id": "req-error"}
    return Response(json.dumps(body), status=status, content_type="application/json")


def serve(httpserver, path: str, method: str, answers: Iterable[dict | Response]) -> None:
    """Answer successive requests in turn; the last answer repeats."""
    answers = list(answers)

    def handler(request: Request) -> Response:
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        return as_response(answer)

    httpserver.expect_request(path, method=method).respond_with_handler(handler)


def serve_job(httpserver, polls: Iterable[dict | Response], count: int = 1) -> None:
    serve(httpserver, SUBMIT, "POST", [submitted()])
    serve(httpserver, JOB, "GET", polls)
    for i in range(count):
        httpserver.expect_request(f"/results/{i}.png").respond_with_data(png(), content_type="image/png")


def requests_to(httpserver, path: str) -> list[Request]:
    return [request for request, _ in httpserver.log if request.path == path]


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).rglob("*") if p.is_file())


def run(task: Task) -> Task:
    run_task(str(task.pk))
    task.refresh_from_db()
    return task


def dashscope_task(user, **fields) -> Task:
    values = {"provider": "dashscope", "model": "wan2.2-t2i-flash", "width": 1024, "height": 768, "seed": 42}
    return TaskFactory(owner=user, **{**values, **fields})


def assert_failed_cleanly(task: Task, media_root: Path, code: str) -> None:
    assert task.status == Task.Status.FAILED
    assert task.error_code == code
    assert "{" not in task.error_message and "Traceback" not in task.error_message
    assert not Image.objects.filter(task=task).exists()
    assert files_under(media_root) == []


# --- models ---------------------------------------------------------------------------


def test_it_offers_the_default_models_with_their_limits(dashscope):
    models = {model.id: model for model in dashscope().models()}
    assert list(models) == ["wan2.6-t2i", "wan2.2-t2i-flash", "qwen-image-plus"]
    flash = models["wan2.2-t2i-flash"]
    assert (flash.min_size, flash.max_size, flash.max_images, flash.max_seed) == (512, 1440, 4, MAX_SEED)
    assert flash.supports_negative_prompt and flash.supports_seed
    assert not flash.supports_steps and not flash.supports_guidance
    assert flash.size_error(1440, 512) is None and flash.size_error(1441, 512) and flash.size_error(511, 512)
    qwen = models["qwen-image-plus"]
    assert qwen.max_images == 1
    assert qwen.size_error(1328, 1328) is None and qwen.size_error(1024, 1024)


# What the vendor's pages document for each model (text-to-image V2 and Qwen-Image API
# references): route, image count, and sizes that must pass or fail. No model takes steps or
# guidance; every one takes a negative prompt and seeds up to 2147483647.
MODEL_TABLE = [
    # Wan 2.5/2.6: the recommended sizes (1280*1280, 1104*1472, 1472*1104, 960*1696, 1696*960) and
    # the page's own 768*2700; not the 2025 floor of 768*768, nor past 1440*1440 or 4:1.
    (
        "wan2.6-t2i",
        IMAGE_GENERATION,
        4,
        [(1280, 1280), (1696, 960), (960, 1696), (2880, 720), (768, 2700)],
        [(1024, 1024), (2880, 640), (1600, 1600)],
    ),
    (
        "wan2.5-t2i-preview",
        TEXT2IMAGE,
        4,
        [(1280, 1280), (1104, 1472), (1472, 1104), (768, 2700)],
        [(768, 768), (1200, 1200), (1441, 1441)],
    ),
    ("wan2.2-t2i-flash", TEXT2IMAGE, 4, [(512, 512), (1440, 1440), (1000, 777)], [(1500, 1024), (500, 1024)]),
    ("wan2.2-t2i-plus", TEXT2IMAGE, 4, [(1024, 1024)], [(1536, 1536)]),
    ("wanx2.1-t2i-turbo", TEXT2IMAGE, 4, [(1024, 1024)], [(1536, 1536)]),
    ("wanx2.1-t2i-plus", TEXT2IMAGE, 4, [(1024, 1024)], [(1536, 1536)]),
    ("wanx2.0-t2i-turbo", TEXT2IMAGE, 4, [(1024, 1024)], [(1536, 1536)]),
    (
        "qwen-image",
        TEXT2IMAGE,
        1,
        [(1664, 928), (1472, 1104), (1328, 1328), (1104, 1472), (928, 1664)],
        [(1472, 1140), (1140, 1472), (1024, 1024)],
    ),
    ("qwen-image-plus", TEXT2IMAGE, 1, [(1472, 1104)], [(1472, 1140)]),
    ("qwen-image-max", MULTIMODAL, 1, [(1664, 928), (1104, 1472)], [(2048, 2048)]),
    (
        "qwen-image-2.0",
        MULTIMODAL,
        6,
        [(2048, 2048), (2688, 1536), (2368, 1728), (512, 512)],
        [(511, 512), (2048, 2049)],
    ),
    ("qwen-image-2.0-pro", MULTIMODAL, 6, [(1536, 2688), (1728, 2368)], [(4096, 1024)]),
]


@pytest.mark.parametrize(("model_id", "route", "max_images", "allowed", "refused"), MODEL_TABLE)
def test_each_model_has_its_documented_route_and_limits(model_id, route, max_images, allowed, refused):
    model = KNOWN_MODELS[model_id]
    info = model.info
    assert model.route is route
    assert info.max_images == max_images and info.max_seed == MAX_SEED == 2_147_483_647
    assert info.supports_negative_prompt and info.supports_seed
    assert not info.supports_steps and not info.supports_guidance
    assert info.steps_range is None and info.guidance_range is None
    for width, height in allowed:
        assert info.size_error(width, height) is None, (model_id, width, height)
    for width, height in refused:
        assert info.size_error(width, height), (model_id, width, height)


@pytest.mark.parametrize("model_id", sorted(KNOWN_MODELS))
def test_the_sizes_a_model_suggests_are_ones_it_takes(model_id):
    info = KNOWN_MODELS[model_id].info
    for width, height in info.sizes + info.suggested_sizes:
        assert info.size_error(width, height) is None, (model_id, width, height)


def test_the_free_size_models_suggest_the_vendors_presets():
    assert KNOWN_MODELS["wan2.6-t2i"].info.suggested_sizes == (
        (1280, 1280),
        (1104, 1472),
        (1472, 1104),
        (960, 1696),
        (1696, 960),
    )
    assert (2688, 1536) in KNOWN_MODELS["qwen-image-2.0"].info.suggested_sizes


def test_every_documented_model_is_in_the_table():
    assert {row[0] for row in MODEL_TABLE} == set(KNOWN_MODELS)


def test_the_operator_list_selects_and_orders_models(dashscope):
    listed = ["wan2.5-t2i-preview", "qwen-image-plus", "wanx2.1-t2i-turbo", "qwen-image-max", "wan2.5-t2i-preview"]
    models = dashscope(MODELS=listed).models()
    assert [model.id for model in models] == listed[:4]  # each once


# An id we do not know gets its family's documented limits and route, by its name.
FAMILIES = [
    # a dated snapshot of a Qwen-Image model: the five sizes, one picture, the synchronous route
    ("qwen-image-plus-2026-01-09", MULTIMODAL, 1, (1472, 1104), (1024, 1024)),
    ("qwen-image-max-2025-12-30", MULTIMODAL, 1, (1328, 1328), (1472, 1140)),
    # Qwen-Image 2.0: 512*512 to 2048*2048 pixels, up to 6 pictures
    ("qwen-image-2.0-2026-03-03", MULTIMODAL, 6, (2048, 2048), (2048, 2560)),
    # Wan 2.6 and later: the messages route and the area limits
    ("wan2.7-t2i", IMAGE_GENERATION, 4, (1280, 1280), (1024, 1024)),
    ("wan2.6-t2i-2026-01-01", IMAGE_GENERATION, 4, (1696, 960), (1440, 720)),
    # Wan 2.5: the area limits, on the text2image route
    ("wan2.5-t2i-plus", TEXT2IMAGE, 4, (768, 2700), (1024, 1024)),
    # Wan 2.2 and older: each side 512-1440
    ("wan2.1-t2i-turbo", TEXT2IMAGE, 4, (1440, 512), (1600, 512)),
    ("wanx2.2-t2i-lite", TEXT2IMAGE, 4, (1024, 1024), (2048, 1024)),
]


@pytest.mark.parametrize(("model_id", "route", "max_images", "allowed", "refused"), FAMILIES)
def test_an_unknown_model_gets_its_familys_documented_limits(dashscope, model_id, route, max_images, allowed, refused):
    assert model_id not in KNOWN_MODELS
    model = generic_model(model_id)
    assert model.route is route and model.info.label == model_id
    assert model.info.max_images == max_images and model.info.max_seed == MAX_SEED
    assert model.info.size_error(*allowed) is None
    assert model.info.size_error(*refused)
    [offered] = dashscope(MODELS=[model_id]).models()
    assert offered == model.info


def test_an_id_of_no_known_family_gets_cautious_limits(dashscope):
    [unknown] = dashscope(MODELS=["wan9-secret"]).models()
    assert (unknown.label, unknown.max_images, unknown.min_size, unknown.max_size) == ("wan9-secret", 1, 512, 1440)
    assert generic_model("wan9-secret").route is TEXT2IMAGE


def test_a_size_the_model_refuses_is_not_sent(dashscope, httpserver):
    provider = dashscope()
    with pytest.raises(PermanentProviderError) as raised:
        provider.submit(wan_request(model="wan2.5-t2i-preview", width=1024, height=1024), must_not_save)
    assert raised.value.code == "invalid_request" and "pixels" in str(raised.value)
    with pytest.raises(PermanentProviderError) as raised:
        provider.submit(wan_request(model="qwen-image", width=1328, height=1328, num_images=2), must_not_save)
    assert raised.value.code == "invalid_request" and "1 to 1 images" in str(raised.value)
    assert httpserver.log == []


# --- the requests -------------------------------------------------------------------------


def test_it_submits_the_documented_request_and_polls_the_job(dashscope, httpserver, user):
    dashscope(WORKSPACE="ws-7")
    serve_job(httpserver, [succeeded(httpserver)])
    task = run(dashscope_task(user, prompt="a red fox", negative_prompt="blurry", seed=42))
    assert task.status == Task.Status.COMPLETED

    [submit] = requests_to(httpserver, SUBMIT)
    assert submit.method == "POST"
    assert submit.headers["Authorization"] == f"Bearer {KEY}"
    assert submit.headers["Content-Type"] == "application/json"
    assert submit.headers["X-DashScope-Async"] == "enable"
    assert submit.headers["X-DashScope-WorkSpace"] == "ws-7"
    assert json.loads(submit.get_data()) == {
        "model": "wan2.2-t2i-flash",
        "input": {"prompt": "a red fox", "negative_prompt": "blurry"},
        "parameters": {"size": "1024*768", "n": 1, "seed": 42, "prompt_extend": False, "watermark": False},
    }
    [poll] = requests_to(httpserver, JOB)
    assert poll.method == "GET" and poll.query_string == b""
    assert poll.headers["Authorization"] == f"Bearer {KEY}"
    assert "X-DashScope-Async" not in poll.headers


def test_it_sends_a_seed_of_its_own_and_records_it(dashscope, httpserver, user):
    dashscope()
    serve_job(httpserver, [succeeded(httpserver)])
    task = run(dashscope_task(user, seed=None, negative_prompt=""))
    [submit] = requests_to(httpserver, SUBMIT)
    body = json.loads(submit.get_data())
    assert "negative_prompt" not in body["input"]
    sent = body["parameters"]["seed"]
    assert 0 <= sent <= MAX_SEED
    assert [image.seed for image in task.ordered_images] == [sent]


def test_prompt_extend_can_be_turned_on(dashscope, httpserver, user):
    dashscope(PROMPT_EXTEND=True)
    serve_job(httpserver, [succeeded(httpserver)])
    run(dashscope_task(user))
    [submit] = requests_to(httpserver, SUBMIT)
    assert json.loads(submit.get_data())["parameters"]["prompt_extend"] is True


# --- a job that succeeds ------------------------------------------------------------------


def test_a_job_is_polled_until_it_succeeds_and_the_links_are_stored(dashscope, httpserver, user, media_root):
    dashscope()
    serve_job(httpserver, [job("PENDING"), job("RUNNING"), succeeded(httpserver, count=2)], count=2)
    task = run(dashscope_task(user, num_images=2))

    assert task.status == Task.Status.COMPLETED and task.attempts == 1
    assert task.provider_request_id == "req-submit"
    assert len(requests_to(httpserver, SUBMIT)) == 1
    assert len(requests_to(httpserver, JOB)) == 3
    assert json.loads(requests_to(httpserver, SUBMIT)[0].get_data())["parameters"]["n"] == 2
    images = task.ordered_images
    assert [(image.width, image.height) for image in images] == [(16, 12), (16, 12)]
    # One job made both pictures; DashScope does not say which seed each one got.
    assert [image.seed for image in images] == [None, None]
    assert len(files_under(media_root)) == 4


def test_progress_moves_with_the_job_status(dashscope, httpserver):
    provider = dashscope()
    serve_job(httpserver, [job("PENDING"), job("RUNNING"), job("RUNNING"), succeeded(httpserver)])
    seen: list[int] = []
    request = GenerationRequest(prompt="p", model="wan2.2-t2i-flash", width=1024, height=1024, seed=7)
    [image] = provider.generate(request, progress=seen.append)
    assert seen == [10, 20, 50, 100]
    assert image.url == httpserver.url_for("/results/0.png")
    assert (image.seed, image.request_id, image.extra["task_id"]) == (7, "req-submit", "task-1")


def test_a_passing_failure_while_polling_does_not_resubmit(dashscope, httpserver, user):
    dashscope()
    unavailable = Response("Service Unavailable", status=503)
    gateway = error(504, "GatewayTimeout", "upstream timed out")
    busy = error(429, "Throttling", "Requests throttling triggered.")
    serve_job(httpserver, [unavailable, gateway, busy, job("RUNNING"), succeeded(httpserver)])
    task = run(dashscope_task(user))
    assert task.status == Task.Status.COMPLETED and task.attempts == 1
    assert len(requests_to(httpserver, SUBMIT)) == 1


def test_a_link_to_the_local_network_is_refused(dashscope, httpserver, user, media_root):
    dashscope(SELF_HOSTED=False)
    serve_job(httpserver, [succeeded(httpserver)])
    task = run(dashscope_task(user))
    assert_failed_cleanly(task, media_root, "unsafe_image_url")
    assert requests_to(httpserver, "/results/0.png") == []


# --- errors answered to the submit ----------------------------------------------------------

PERMANENT_ERRORS = [
    (400, "InvalidParameter", "size must be in [512, 1440]", "invalid_request", "did not accept"),
    (400, "BadRequest.EmptyInput", "Required input is empty", "invalid_request", "Required input is empty"),
    (400, "DataInspectionFailed", "Input data may contain inappropriate content.", "content_rejected", "sensitive"),
    (
        400,
        "IPInfringementSuspect",
        "Input data is suspected of being involved in IP infringement.",
        "content_rejected",
        "intellectual property",
    ),
    # Not moderation: DashScope could not download an input.
    (
        400,
        "InvalidParameter.DataInspection",
        "Unable to download the media resource during the data inspection process.",
        "invalid_request",
        "Unable to download the media resource",
    ),
    (400, "InvalidParameter", "Model not found", "model_not_found", "does not offer"),
    (
        400,
        "Arrearage",
        "Access denied, please make sure your account is in good standing.",
        "quota_exhausted",
        "unpaid bill",
    ),
    (401, "InvalidApiKey", "Invalid API-key provided.", "authentication_failed", "API key"),
    (403, "AccessDenied", "Access denied.", "permission_denied", "denied access"),
    (403, "AccessDenied.Unpurchased", "Model access denied.", "permission_denied", "activated"),
    (403, "Model.AccessDenied", "Model access denied.", "permission_denied", "enable it"),
    (403, "Workspace.AccessDenied", "Workspace access denied.", "permission_denied", "Workspace access denied"),
    (
        403,
        "AccessDenied",
        "current user api does not support synchronous calls.",
        "invalid_request",
        "does not support synchronous calls",
    ),
    (403, "AllocationQuota.FreeTierOnly", "The free tier of the model has been exhausted.", "quota_exhausted", "free"),
    (404, "ModelNotFound", "Model can not be found.", "model_not_found", "does not offer"),
    (429, "Throttling.AllocationQuota", "Free allocated quota exceeded.", "quota_exhausted", "free quota"),
    (429, "CommodityNotPurchased", "Commodity has not purchased yet.", "quota_exhausted", "not bought"),
    (429, "PrepaidBillOverdue", "The prepaid bill is overdue.", "quota_exhausted", "unpaid bill"),
    (429, "PostpaidBillOverdue", "The postpaid bill is overdue.", "quota_exhausted", "unpaid bill"),
    (400, "SomethingNew", "A reason nobody documented", "provider_error", "A reason nobody documented"),
]


@pytest.mark.parametrize(("status", "code", "message", "expected", "shown"), PERMANENT_ERRORS)
def test_a_permanent_submit_error_fails_the_task_at_once(
    dashscope, httpserver, user, media_root, status, code, message, expected, shown
):
    dashscope()
    serve(httpserver, SUBMIT, "POST", [error(status, code, message)])
    task = run(dashscope_task(user))
    assert_failed_cleanly(task, media_root, expected)
    assert shown in task.error_message
    assert task.attempts == 1 and task.provider_request_id == "req-error"
    assert requests_to(httpserver, JOB) == []


def test_the_vendor_reason_is_shown_for_invalid_settings(dashscope, httpserver, user):
    dashscope()
    serve(httpserver, SUBMIT, "POST", [error(400, "InvalidParameter", "size must be in [512, 1440]")])
    task = run(dashscope_task(user))
    assert task.error_message == "The provider did not accept these settings. (size must be in [512, 1440])"


TRANSIENT_ERRORS = [
    (error(429, "Throttling.RateQuota", "Requests rate limit exceeded."), "rate_limited", "req-error"),
    (error(429, "Throttling.BurstRate", "Request rate increased too quickly."), "rate_limited", "req-error"),
    # Token-rate limiting (TPS/TPM), not the free quota: the next attempt may pass.
    (
        error(429, "Throttling.AllocationQuota", "Allocated quota exceeded, please increase your quota limit."),
        "rate_limited",
        "req-error",
    ),
    (error(408, "RequestTimeOut", "Request timed out."), "timeout", "req-error"),
    (error(500, "InternalError", "An internal error has occured."), "provider_unavailable", "req-error"),
    # Refused before any job ran: worth another submission (a finished job's InternalError.Algo is not).
    (error(500, "InternalError.Algo", "Algorithm process error."), "provider_unavailable", "req-error"),
    (error(503, "ModelUnavailable", "Model is unavailable, try again later."), "provider_unavailable", "req-error"),
    (Response("Service Unavailable", status=503), "provider_unavailable", ""),
    (Response("Gateway Timeout", status=504), "provider_unavailable", ""),
]


@pytest.mark.parametrize(("answer", "expected", "request_id"), TRANSIENT_ERRORS)
def test_a_transient_submit_error_is_retried_then_fails(
    dashscope, httpserver, user, media_root, settings, answer, expected, request_id
):
    dashscope()
    serve(httpserver, SUBMIT, "POST", [answer])
    task = run(dashscope_task(user))
    assert_failed_cleanly(task, media_root, expected)
    assert task.attempts == settings.PROVIDER_MAX_ATTEMPTS
    assert len(requests_to(httpserver, SUBMIT)) == settings.PROVIDER_MAX_ATTEMPTS
    assert task.provider_request_id == request_id


def test_a_transient_submit_error_then_success_completes(dashscope, httpserver, user):
    dashscope()
    serve(httpserver, SUBMIT, "POST", [error(429, "Throttling", "Requests throttling triggered."), submitted()])
    serve(httpserver, JOB, "GET", [succeeded(httpserver)])
    httpserver.expect_request("/results/0.png").respond_with_data(png(), content_type="image/png")
    task = run(dashscope_task(user))
    assert task.status == Task.Status.COMPLETED and task.attempts == 2


def test_a_slow_submit_is_not_sent_again_and_says_so(dashscope, httpserver, user, media_root):
    # DashScope may have accepted (and will bill) the job whose answer never came; it takes no
    # idempotency key, so a second submission could pay twice.
    dashscope(TIMEOUT_SECONDS=0.05)
    arrived: list[Request] = []

    def slow(request: Request) -> Response:
        arrived.append(request)
        time.sleep(0.15)
        return as_response(submitted())

    httpserver.expect_request(SUBMIT, method="POST").respond_with_handler(slow)
    task = run(dashscope_task(user))
    assert_failed_cleanly(task, media_root, "timeout")
    assert task.attempts == 1
    assert len(arrived) == 1
    assert "did not send the request again" in task.error_message and "0.05 seconds" in task.error_message


def test_an_unreachable_host_is_tried_again(configure_provider):
    # Nothing was sent: a refused connection stays worth another attempt.
    provider = configure_provider("dashscope", API_KEY=KEY, BASE_URL="http://127.0.0.1:9/api/v1", TIMEOUT_SECONDS=0.5)
    with pytest.raises(TransientProviderError) as raised:
        provider.submit(wan_request(), must_not_save)
    assert raised.value.code == "connection_error"


# --- jobs that end badly ------------------------------------------------------------------------

JOB_FAILURES = [
    (
        job("FAILED", code="DataInspectionFailed", message="Input data may contain inappropriate content."),
        "content_rejected",
        "sensitive",
    ),
    (
        job("FAILED", code="DataInspectionFailed", message="Output data may contain inappropriate content."),
        "output_rejected",
        "safety check",
    ),
    (
        job(
            "FAILED",
            code="IPInfringementSuspect",
            message="Input data is suspected of being involved in IP infringement.",
        ),
        "content_rejected",
        "intellectual property",
    ),
    # A job that ran and failed this way is final: looking again or resubmitting changes nothing.
    (
        job("FAILED", code="InternalError.Algo", message="Algorithm process error."),
        "generation_failed",
        "(Algorithm process error.)",
    ),
    (
        job("FAILED", code="InternalError.Timeout", message="An internal timeout error has occured during execution."),
        "generation_failed",
        "internal timeout",
    ),
    (job("FAILED", code="Arrearage", message="Account overdue."), "quota_exhausted", "unpaid bill"),
    (job("FAILED", code="InvalidParameter", message="size is invalid"), "invalid_request", "size is invalid"),
    (job("CANCELED"), "generation_failed", "The provider canceled the job."),
    (job("UNKNOWN"), "task_expired", "no longer knows this job"),
]


@pytest.mark.parametrize(("final", "expected", "shown"), JOB_FAILURES)
def test_a_job_that_ends_badly_fails_the_task(dashscope, httpserver, user, media_root, final, expected, shown):
    dashscope()
    serve_job(httpserver, [job("RUNNING"), final])
    task = run(dashscope_task(user))
    assert_failed_cleanly(task, media_root, expected)
    assert shown in task.error_message
    assert task.attempts == 1 and task.provider_request_id == "req-submit"


def test_one_failed_result_keeps_the_other_picture_and_notes_the_failure(dashscope, httpserver, user, media_root):
    # Partial results are kept now (audit D3): the good, billed picture is no longer thrown away.
    dashscope()
    answer = succeeded(httpserver, count=2)
    answer["output"]["results"][1] = {"code": "DataInspectionFailed", "message": "Inappropriate content."}
    serve_job(httpserver, [answer], count=2)
    task = run(dashscope_task(user, num_images=2))
    assert task.status == Task.Status.COMPLETED, task.error_message
    assert len(task.ordered_images) == 1
    assert len(requests_to(httpserver, "/results/0.png")) == 1
    assert "1 of 2" in task.note_text


def test_every_result_failing_fails_the_task(dashscope, httpserver, user, media_root):
    dashscope()
    answer = succeeded(httpserver, count=2)
    failed = {"code": "DataInspectionFailed", "message": "Inappropriate content."}
    answer["output"]["results"] = [failed, failed]
    serve_job(httpserver, [answer], count=2)
    task = run(dashscope_task(user, num_images=2))
    assert_failed_cleanly(task, media_root, "output_rejected")


def test_fewer_results_than_asked_keeps_them_and_counts_the_rest_as_failed(dashscope, httpserver, user, media_root):
    dashscope()
    answer = succeeded(httpserver, count=1)
    serve_job(httpserver, [answer])
    task = run(dashscope_task(user, num_images=3))
    assert task.status == Task.Status.COMPLETED, task.error_message
    assert len(task.ordered_images) == 1
    assert "2 of 3" in task.note_text


def test_a_job_without_any_result_fails_the_task(dashscope, httpserver, user, media_root):
    dashscope()
    serve_job(httpserver, [job("SUCCEEDED", results=[])])
    task = run(dashscope_task(user, num_images=2))
    assert_failed_cleanly(task, media_root, "generation_failed")
    assert "0 of 2" in task.error_message


def test_a_job_that_never_finishes_times_out_without_ever_resubmitting(
    dashscope, httpserver, user, media_root, settings
):
    # A job still running at the deadline is never submitted again (audit D2): that would pay twice.
    dashscope(POLL_DEADLINE_SECONDS=0.08)
    serve_job(httpserver, [job("RUNNING")])
    task = run(dashscope_task(user))
    assert_failed_cleanly(task, media_root, "timeout")
    assert "0.08 seconds" in task.error_message
    assert task.provider_request_id == "req-submit"
    assert task.attempts == 1
    assert len(requests_to(httpserver, SUBMIT)) == 1
    assert len(requests_to(httpserver, JOB)) >= 1
    # The cancel is tried (best effort): DashScope refuses it for a running job, which changes nothing.
    assert len(requests_to(httpserver, CANCEL)) == 1


def test_a_job_still_queued_at_the_deadline_is_canceled(dashscope, httpserver):
    provider = dashscope(POLL_DEADLINE_SECONDS=0.05)
    serve_job(httpserver, [job("PENDING")])
    serve(httpserver, CANCEL, "POST", [{"request_id": "req-cancel"}])
    request = GenerationRequest(prompt="p", model="wan2.2-t2i-flash", width=1024, height=1024)
    with pytest.raises(TransientProviderError) as raised:
        provider.generate(request)
    assert raised.value.code == "timeout"
    [cancel] = requests_to(httpserver, CANCEL)
    assert cancel.method == "POST" and cancel.headers["Authorization"] == f"Bearer {KEY}"


# --- the job step by step, as the scheduler drives it (submit / check_job / cancel_job) -------------


def wan_request(**fields) -> GenerationRequest:
    values = {"prompt": "p", "model": "wan2.2-t2i-flash", "width": 1024, "height": 1024, "seed": 7}
    return GenerationRequest(**{**values, **fields})


def must_not_save(state: dict) -> None:
    raise AssertionError(f"check_job saved {state!r}: a DashScope job is one job, named at submit")


def test_it_runs_every_request_as_a_job(dashscope):
    assert dashscope().runs_as_job(wan_request()) is True


def test_submit_posts_once_and_saves_the_job_as_soon_as_it_is_named(dashscope, httpserver):
    provider = dashscope()
    serve(httpserver, SUBMIT, "POST", [submitted()])
    saved: list[dict] = []
    state = provider.submit(wan_request(num_images=2), saved.append)
    assert state == {"task_id": "task-1", "request_id": "req-submit", "seed": 7}
    assert saved == [state]
    json.dumps(state)  # kept on the task as JSON
    assert len(requests_to(httpserver, SUBMIT)) == 1
    assert requests_to(httpserver, JOB) == []  # submit does not wait for the job


def test_a_transient_submit_error_saves_nothing(dashscope, httpserver):
    provider = dashscope()
    serve(httpserver, SUBMIT, "POST", [error(429, "Throttling", "Requests throttling triggered.")])
    saved: list[dict] = []
    with pytest.raises(TransientProviderError):
        provider.submit(wan_request(), saved.append)
    assert saved == []


def test_check_job_makes_exactly_one_status_call_and_never_submits(dashscope, httpserver):
    provider = dashscope()
    serve(httpserver, JOB, "GET", [job("PENDING"), job("RUNNING")])
    state = {"task_id": "task-1", "request_id": "req-submit", "seed": 7}
    saved: list[dict] = []
    first = provider.check_job(wan_request(), state, saved.append)
    assert (first.finished, first.progress) == (False, 20)
    assert len(requests_to(httpserver, JOB)) == 1
    second = provider.check_job(wan_request(), state, saved.append)
    assert (second.finished, second.progress, second.images) == (False, 50, [])
    assert len(requests_to(httpserver, JOB)) == 2
    assert requests_to(httpserver, SUBMIT) == [] and saved == []


def test_check_job_returns_the_pictures_of_a_finished_job(dashscope, httpserver):
    provider = dashscope()
    serve(httpserver, JOB, "GET", [succeeded(httpserver, count=2)])
    check = provider.check_job(
        wan_request(num_images=2), {"task_id": "task-1", "request_id": "r", "seed": 7}, must_not_save
    )
    assert (check.finished, check.failed) == (True, 0)
    assert [image.url for image in check.images] == [
        httpserver.url_for("/results/0.png"),
        httpserver.url_for("/results/1.png"),
    ]
    assert all(image.seed is None and image.extra["task_id"] == "task-1" for image in check.images)


def test_check_job_keeps_the_one_picture_of_three_that_succeeded(dashscope, httpserver):
    provider = dashscope()
    answer = succeeded(httpserver, count=3)
    failed = {"code": "DataInspectionFailed", "message": "Output data may contain inappropriate content."}
    answer["output"]["results"][0] = failed
    answer["output"]["results"][2] = failed
    answer["output"]["task_metrics"] = {"TOTAL": 3, "SUCCEEDED": 1, "FAILED": 2}
    serve(httpserver, JOB, "GET", [answer])
    check = provider.check_job(
        wan_request(num_images=3), {"task_id": "task-1", "request_id": "r", "seed": 7}, must_not_save
    )
    assert check.finished and check.failed == 2
    assert [image.url for image in check.images] == [httpserver.url_for("/results/1.png")]
    assert len(requests_to(httpserver, JOB)) == 1


def test_a_throttled_status_check_is_transient_with_retry_after_and_submits_nothing(dashscope, httpserver):
    provider = dashscope()
    throttled = error(429, "Throttling", "Requests throttling triggered.")
    throttled.headers["Retry-After"] = "7"
    serve(httpserver, JOB, "GET", [throttled])
    with pytest.raises(TransientProviderError) as raised:
        provider.check_job(wan_request(), {"task_id": "task-1", "request_id": "req-submit", "seed": 7}, must_not_save)
    assert raised.value.code == "rate_limited" and raised.value.retry_after == 7
    assert raised.value.request_id == "req-error"
    assert len(requests_to(httpserver, JOB)) == 1
    assert requests_to(httpserver, SUBMIT) == []


@pytest.mark.parametrize("answer", [Response("Service Unavailable", status=503), error(504, "GatewayTimeout", "x")])
def test_an_unavailable_status_check_is_transient(dashscope, httpserver, answer):
    provider = dashscope()
    serve(httpserver, JOB, "GET", [answer])
    with pytest.raises(TransientProviderError) as raised:
        provider.check_job(wan_request(), {"task_id": "task-1", "request_id": "req-submit", "seed": 7}, must_not_save)
    assert raised.value.code == "provider_unavailable" and raised.value.retry_after is None
    assert requests_to(httpserver, SUBMIT) == []


def test_a_refused_key_on_a_status_check_is_permanent(dashscope, httpserver):
    provider = dashscope()
    serve(httpserver, JOB, "GET", [error(401, "InvalidApiKey", "Invalid API-key provided.")])
    with pytest.raises(PermanentProviderError) as raised:
        provider.check_job(wan_request(), {"task_id": "task-1", "request_id": "req-submit", "seed": 7}, must_not_save)
    assert raised.value.code == "authentication_failed"


@pytest.mark.parametrize(("final", "expected", "shown"), JOB_FAILURES)
def test_check_job_raises_for_a_job_that_ended_badly(dashscope, httpserver, final, expected, shown):
    provider = dashscope()
    serve(httpserver, JOB, "GET", [final])
    with pytest.raises(PermanentProviderError) as raised:
        provider.check_job(wan_request(), {"task_id": "task-1", "request_id": "req-submit", "seed": 7}, must_not_save)
    assert raised.value.code == expected and shown in str(raised.value)
    assert raised.value.request_id == "req-submit"


def test_cancel_job_posts_the_cancel(dashscope, httpserver):
    provider = dashscope()
    serve(httpserver, CANCEL, "POST", [{"request_id": "req-cancel"}])
    provider.cancel_job({"task_id": "task-1", "request_id": "req-submit", "seed": 7})
    [cancel] = requests_to(httpserver, CANCEL)
    assert cancel.method == "POST" and cancel.headers["Authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize(
    "answer", [error(400, "UnsupportedOperation", "Failed to cancel the task."), Response("down", status=503)]
)
def test_cancel_job_never_raises(dashscope, httpserver, answer):
    provider = dashscope()
    serve(httpserver, CANCEL, "POST", [answer])
    provider.cancel_job({"task_id": "task-1"})
    provider.cancel_job({})  # nothing to cancel
    assert len(requests_to(httpserver, CANCEL)) == 1


def test_cancel_job_swallows_an_unreachable_host(configure_provider):
    provider = configure_provider("dashscope", API_KEY=KEY, BASE_URL="http://127.0.0.1:9/api/v1", TIMEOUT_SECONDS=0.5)
    provider.cancel_job({"task_id": "task-1"})


# --- check() ------------------------------------------------------------------------------------------

PROBE = "/api/v1/tasks/00000000-0000-0000-0000-000000000000"


@pytest.mark.parametrize("answer", [job("UNKNOWN"), error(400, "InvalidParameter", "task id is invalid")])
def test_check_passes_when_the_key_is_accepted(dashscope, httpserver, answer):
    provider = dashscope()
    serve(httpserver, PROBE, "GET", [answer])
    # DashScope documents no free listing of its image models: reachability only, no listing.
    assert provider.check() is None
    [probe] = requests_to(httpserver, PROBE)
    assert probe.method == "GET" and probe.headers["Authorization"] == f"Bearer {KEY}"


def test_check_reports_a_refused_key(dashscope, httpserver):
    provider = dashscope()
    serve(httpserver, PROBE, "GET", [error(401, "InvalidApiKey", "Invalid API-key provided.")])
    with pytest.raises(PermanentProviderError) as raised:
        provider.check()
    assert raised.value.code == "authentication_failed"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (Response("Service Unavailable", status=503), "provider_unavailable"),
        (error(429, "Throttling", "Requests throttling triggered."), "rate_limited"),
    ],
)
def test_check_reports_a_passing_failure(dashscope, httpserver, answer, expected):
    provider = dashscope()
    serve(httpserver, PROBE, "GET", [answer])
    with pytest.raises(TransientProviderError) as raised:
        provider.check()
    assert raised.value.code == expected


def test_check_reports_a_base_url_that_is_not_the_api(dashscope, httpserver):
    provider = dashscope(BASE_URL=httpserver.url_for("/wrong/v1"))
    httpserver.expect_request("/wrong/v1/tasks/00000000-0000-0000-0000-000000000000").respond_with_data(
        "Not Found", status=404
    )
    with pytest.raises(PermanentProviderError) as raised:
        provider.check()
    assert raised.value.code == "provider_error" and "base URL" in str(raised.value)


# --- the routes of the newer models ------------------------------------------------------------------


def messages_body(prompt: str) -> dict:
    return {"messages": [{"role": "user", "content": [{"text": prompt}]}]}


def choices(httpserver, count: int = 1) -> list[dict]:
    content = [{"image": httpserver.url_for(f"/results/{i}.png"), "type": "image"} for i in range(count)]
    return [{"finish_reason": "stop", "message": {"role": "assistant", "content": content}}]


def test_wan_2_6_is_a_job_on_the_image_generation_route(dashscope, httpserver, user):
    dashscope()
    serve(httpserver, SUBMIT_MESSAGES, "POST", [submitted()])
    serve(httpserver, JOB, "GET", [job("RUNNING"), job("SUCCEEDED", choices=choices(httpserver, 2), finished=True)])
    for i in range(2):
        httpserver.expect_request(f"/results/{i}.png").respond_with_data(png(), content_type="image/png")
    task = run(
        dashscope_task(
            user, model="wan2.6-t2i", width=1696, height=960, num_images=2, prompt="a fox", negative_prompt="blur"
        )
    )
    assert task.status == Task.Status.COMPLETED, task.error_message
    assert len(task.ordered_images) == 2
    [submit] = requests_to(httpserver, SUBMIT_MESSAGES)
    assert submit.headers["X-DashScope-Async"] == "enable"
    assert json.loads(submit.get_data()) == {
        "model": "wan2.6-t2i",
        "input": messages_body("a fox"),
        "parameters": {
            "size": "1696*960",
            "n": 2,
            "seed": 42,
            "prompt_extend": False,
            "watermark": False,
            "negative_prompt": "blur",
        },
    }
    assert requests_to(httpserver, SUBMIT) == []


@pytest.mark.parametrize(
    ("model", "width", "height", "count"), [("qwen-image-max", 1664, 928, 1), ("qwen-image-2.0-pro", 2688, 1536, 3)]
)
def test_a_synchronous_model_makes_its_pictures_in_one_call(dashscope, httpserver, model, width, height, count):
    provider = dashscope()
    answer = {
        "output": {"choices": choices(httpserver, count)},
        "usage": {"image_count": count},
        "request_id": "req-sync",
    }
    serve(httpserver, SYNC, "POST", [answer])
    request = GenerationRequest(prompt="a poster", model=model, width=width, height=height, num_images=count, seed=9)
    assert provider.runs_as_job(request) is False
    seen: list[int] = []
    images = provider.generate(request, progress=seen.append)
    assert [image.url for image in images] == [httpserver.url_for(f"/results/{i}.png") for i in range(count)]
    assert all(image.request_id == "req-sync" for image in images)
    assert [image.seed for image in images] == ([9] if count == 1 else [None] * count)
    assert seen == [100]
    [call] = requests_to(httpserver, SYNC)
    assert "X-DashScope-Async" not in call.headers
    assert json.loads(call.get_data()) == {
        "model": model,
        "input": messages_body("a poster"),
        "parameters": {"size": f"{width}*{height}", "n": count, "seed": 9, "prompt_extend": False, "watermark": False},
    }
    assert requests_to(httpserver, JOB) == []  # nothing to poll


def test_a_synchronous_model_runs_through_the_scheduler(dashscope, httpserver, user):
    dashscope()
    serve(httpserver, SYNC, "POST", [{"output": {"choices": choices(httpserver)}, "request_id": "req-sync"}])
    httpserver.expect_request("/results/0.png").respond_with_data(png(), content_type="image/png")
    task = run(dashscope_task(user, model="qwen-image-max", width=1328, height=1328))
    assert task.status == Task.Status.COMPLETED, task.error_message
    assert task.provider_request_id == "req-sync" and [image.seed for image in task.ordered_images] == [42]


def test_a_slow_synchronous_call_is_not_sent_again(dashscope, httpserver, user, media_root):
    dashscope(TIMEOUT_SECONDS=0.05)
    arrived: list[Request] = []

    def slow(request: Request) -> Response:
        arrived.append(request)
        time.sleep(0.15)
        return as_response({"output": {"choices": choices(httpserver)}})

    httpserver.expect_request(SYNC, method="POST").respond_with_handler(slow)
    task = run(dashscope_task(user, model="qwen-image-2.0", width=2048, height=2048))
    assert_failed_cleanly(task, media_root, "timeout")
    assert task.attempts == 1 and len(arrived) == 1
    assert "did not send the request again" in task.error_message


def test_the_synchronous_call_waits_as_long_as_the_vendor_allows(dashscope):
    provider = dashscope()
    assert provider.timeout[1] == 30.0  # a submission or a status look answers at once
    assert provider.sync_timeout[1] == 300.0  # the picture itself comes in the answer
    assert dashscope(TIMEOUT_SECONDS=12).sync_timeout[1] == 12.0


@pytest.mark.parametrize(
    ("answer", "expected", "shown"),
    [
        (
            error(400, "IPInfringementSuspect", "Input data is suspected of being involved in IP infringement."),
            "content_rejected",
            "intellectual property",
        ),
        (
            {
                "code": "DataInspectionFailed",
                "message": "Output data may contain inappropriate content.",
                "request_id": "r",
            },
            "output_rejected",
            "safety check",
        ),
        ({"request_id": "r"}, "provider_error", "did not understand"),
    ],
)
def test_a_synchronous_call_that_fails_says_why(dashscope, httpserver, answer, expected, shown):
    provider = dashscope()
    serve(httpserver, SYNC, "POST", [answer])
    request = GenerationRequest(prompt="p", model="qwen-image-max", width=1328, height=1328)
    with pytest.raises(PermanentProviderError) as raised:
        provider.generate(request)
    assert raised.value.code == expected and shown in str(raised.value)
    assert len(requests_to(httpserver, SYNC)) == 1


# --- the error table --------------------------------------------------------------------------------


@pytest.mark.parametrize("row", ERROR_TABLE, ids=lambda row: row.codes[0] + (f"[{row.message}]" if row.message else ""))
def test_each_documented_code_is_classified_as_its_message_says(row):
    code = code_of(row.key)
    assert row.key in MESSAGES
    assert row.kind in (Kind.TRANSIENT, Kind.ACCOUNT, Kind.CONTENT, Kind.REQUEST)
    # The kind written in the table is the kind the error will have.
    assert row.kind == (Kind.TRANSIENT if code in TRANSIENT_CODES else kind_of(code))


CLASSIFIED = [
    ("Throttling.AllocationQuota", "Free allocated quota exceeded.", Kind.ACCOUNT, "quota_exhausted.free_quota"),
    ("insufficient_quota", "Free allocated quota exceeded.", Kind.ACCOUNT, "quota_exhausted.free_quota"),
    (
        "Throttling.AllocationQuota",
        "Allocated quota exceeded, please increase your quota limit.",
        Kind.TRANSIENT,
        "rate_limited",
    ),
    (
        "IPInfringementSuspect",
        "Input data is suspected of being involved in IP infringement.",
        Kind.CONTENT,
        "content_rejected.intellectual_property",
    ),
    ("InternalError.Algo", "inference internal error.", Kind.TRANSIENT, "provider_unavailable"),
    ("InvalidParameter.DataInspection", "Unable to download the media resource.", Kind.REQUEST, "invalid_request"),
    (
        "Arrearage",
        "Access denied, please make sure your account is in good standing.",
        Kind.ACCOUNT,
        "quota_exhausted.billing",
    ),
    ("AccessDenied", "current user api does not support asynchronous calls.", Kind.REQUEST, "invalid_request"),
    ("AccessDenied", "Access denied.", Kind.ACCOUNT, "permission_denied.model_activation"),
    ("InvalidParameter", "Model not found", Kind.ACCOUNT, "model_not_found.not_offered"),
    ("InvalidParameter", "Range of n should be [1, 4]", Kind.REQUEST, "invalid_request"),
    ("InvalidURL.Timeout", "Download xxx timeout.", Kind.REQUEST, "invalid_request"),
]


@pytest.mark.parametrize(("vendor_code", "message", "kind", "key"), CLASSIFIED)
def test_a_code_and_its_message_pick_one_row(vendor_code, message, kind, key):
    row = vendor_error(vendor_code, message)
    assert row is not None and (row.kind, row.key) == (kind, key)


def test_a_code_nobody_documented_has_no_row():
    assert vendor_error("SomethingNew", "") is None
    assert vendor_error("Throttling.Something", "") is None  # only the documented Throttling codes


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (error(429, "Throttling.SomethingNew", "Slow down."), "rate_limited"),
        (error(503, "ServiceBusy", "Busy."), "provider_unavailable"),
        (error(401, "InvalidToken", "No."), "authentication_failed"),
        (error(400, "SomethingNew", "A reason nobody documented"), "provider_error"),
    ],
)
def test_a_code_the_page_does_not_list_goes_by_its_status(dashscope, httpserver, answer, expected):
    provider = dashscope()
    serve(httpserver, SUBMIT, "POST", [answer])
    with pytest.raises(ProviderError) as raised:
        provider.submit(wan_request(), must_not_save)
    assert raised.value.code == expected
    assert raised.value.transient is (expected in TRANSIENT_CODES)


def test_the_free_quota_is_not_retried(dashscope, httpserver, user, media_root):
    dashscope()
    serve(httpserver, SUBMIT, "POST", [error(429, "Throttling.AllocationQuota", "Free allocated quota exceeded.")])
    task = run(dashscope_task(user))
    assert_failed_cleanly(task, media_root, "quota_exhausted")
    assert task.attempts == 1 and len(requests_to(httpserver, SUBMIT)) == 1
    assert "free quota" in task.error_message and "busy" not in task.error_message


# --- regions ----------------------------------------------------------------------------------------

REGIONS = [
    ("cn-beijing", "https://dashscope.aliyuncs.com/api/v1"),
    ("ap-southeast-1", "https://dashscope-intl.aliyuncs.com/api/v1"),
    ("us-east-1", "https://dashscope-us.aliyuncs.com/api/v1"),
    ("cn-hongkong", "https://cn-hongkong.dashscope.aliyuncs.com/api/v1"),
    (" AP-Southeast-1 ", "https://dashscope-intl.aliyuncs.com/api/v1"),
]


@pytest.mark.parametrize(("region", "endpoint"), REGIONS)
def test_the_region_chooses_the_documented_endpoint(configure_provider, region, endpoint):
    provider = configure_provider("dashscope", API_KEY=KEY, REGION=region)
    assert provider.base_url == endpoint
    assert provider.download_policy.trusted_origin == endpoint.split("/api")[0].lower() + ":443"


def test_beijing_is_the_default_region(configure_provider):
    assert configure_provider("dashscope", API_KEY=KEY).base_url == "https://dashscope.aliyuncs.com/api/v1"


def test_the_base_url_wins_over_the_region(configure_provider):
    provider = configure_provider(
        "dashscope", API_KEY=KEY, REGION="eu-central-1", BASE_URL="https://ws-1.eu-central-1.maas.aliyuncs.com/api/v1/"
    )
    assert provider.base_url == "https://ws-1.eu-central-1.maas.aliyuncs.com/api/v1"


@pytest.mark.parametrize("region", ["eu-central-1", "singapore", "cn-shanghai"])
def test_an_unknown_region_is_not_offered_and_names_the_allowed_ones(configure_provider, caplog, region):
    with caplog.at_level(logging.ERROR, logger="generator.providers.dashscope"):
        assert configure_provider("dashscope", API_KEY=KEY, REGION=region) is None
    [record] = [record for record in caplog.records if record.name == "generator.providers.dashscope"]
    text = record.getMessage()
    assert "DASHSCOPE_REGION" in text and "DASHSCOPE_BASE_URL" in text
    for allowed in ("cn-beijing", "ap-southeast-1", "us-east-1", "cn-hongkong"):
        assert allowed in text


# --- against the fake vendor the cluster tests use (tests/fake_providers.py) ----------------------------


@pytest.fixture
def fake_vendor() -> Iterator[FakeVendor]:
    with serving() as vendor:
        yield vendor


def fake_provider(configure_provider, vendor: FakeVendor, **values):
    env = vendor.dashscope_env()
    config = {key.removeprefix("DASHSCOPE_"): value for key, value in env.items()}
    return configure_provider("dashscope", **{**config, "SELF_HOSTED": True, "POLL_INTERVAL_SECONDS": 0.01, **values})


@pytest.mark.parametrize(
    ("model", "width", "height"),
    [("wan2.2-t2i-flash", 512, 512), ("wan2.6-t2i", 1280, 1280), ("qwen-image-2.0", 1024, 1024)],
)
def test_every_route_works_against_the_fake_vendor(configure_provider, fake_vendor, model, width, height):
    fake_vendor.job_seconds = 0.05
    provider = fake_provider(configure_provider, fake_vendor)
    tok = token()
    images = provider.generate(
        GenerationRequest(prompt=f"a fox {tok}", model=model, width=width, height=height, num_images=2)
    )
    assert len(images) == 2 and all(image.url.startswith(fake_vendor.url + "/results/") for image in images)
    assert fake_vendor.submissions[tok] == 1 and not fake_vendor.unexpected


def test_the_fake_vendor_fails_a_job_the_way_dashscope_does(configure_provider, fake_vendor):
    fake_vendor.job_seconds = 0.05
    provider = fake_provider(configure_provider, fake_vendor)
    tok = token()
    fake_vendor.fail_jobs(tok, "InternalError.Algo", "inference internal error.")
    request = GenerationRequest(prompt=f"p {tok}", model="wan2.2-t2i-flash", width=512, height=512)
    with pytest.raises(PermanentProviderError) as raised:
        provider.generate(request)
    assert raised.value.code == "generation_failed" and "inference internal error" in str(raised.value)
    assert fake_vendor.submissions[tok] == 1


def test_the_fake_vendor_refuses_a_submission_the_way_dashscope_does(configure_provider, fake_vendor):
    provider = fake_provider(configure_provider, fake_vendor)
    tok = token()
    fake_vendor.fail_submissions(tok, 500, times=1)  # scripted failures answer in the order given
    fake_vendor.fail_submissions(tok, 429, code="Throttling.AllocationQuota", message="Free allocated quota exceeded.")
    request = GenerationRequest(prompt=f"p {tok}", model="wan2.2-t2i-flash", width=512, height=512)
    with pytest.raises(TransientProviderError) as first:
        provider.submit(request, must_not_save)
    assert first.value.code == "provider_unavailable"
    with pytest.raises(PermanentProviderError) as second:
        provider.submit(request, must_not_save)
    assert second.value.code == "quota_exhausted"
    assert fake_vendor.submissions[tok] == 2 and not fake_vendor.jobs
