"""The DashScope provider against a local stand-in for the API: the exact requests, the
submit-then-poll job, URL results, and every documented error ending the task correctly."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterable
from pathlib import Path

import pytest
from PIL import Image as PILImage
from werkzeug import Request, Response

from generator.models import Image, Task
from generator.providers import GenerationRequest, PermanentProviderError, TransientProviderError
from generator.providers.dashscope import MAX_SEED
from generator.scheduler.inline import run_task

from .factories import TaskFactory

SUBMIT = "/api/v1/services/aigc/text2image/image-synthesis"
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


# --- models -----------------------------------------------------------------------------


def test_it_offers_the_default_models_with_their_limits(dashscope):
    models = {model.id: model for model in dashscope().models()}
    assert list(models) == ["wan2.2-t2i-flash", "wan2.2-t2i-plus", "qwen-image"]
    flash = models["wan2.2-t2i-flash"]
    assert (flash.min_size, flash.max_size, flash.max_images, flash.max_seed) == (512, 1440, 4, MAX_SEED)
    assert flash.supports_negative_prompt and flash.supports_seed
    assert not flash.supports_steps and not flash.supports_guidance
    qwen = models["qwen-image"]
    assert qwen.max_images == 1
    assert qwen.size_error(1328, 1328) is None and qwen.size_error(1024, 1024)


def test_the_operator_list_selects_and_orders_models(dashscope):
    listed = ["wan2.5-t2i-preview", "qwen-image-plus", "wanx2.1-t2i-turbo", "wan9-secret"]
    models = dashscope(MODELS=listed).models()
    assert [model.id for model in models] == listed
    wan25, _, _, unknown = models
    assert wan25.size_error(1280, 1280) is None
    assert wan25.size_error(512, 512)  # fewer than 768² pixels
    assert wan25.size_error(2880, 640)  # wider than 4:1
    assert wan25.size_error(1600, 1600)  # more than 1440² pixels
    assert (unknown.label, unknown.max_images, unknown.min_size, unknown.max_size) == ("wan9-secret", 1, 512, 1440)


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
    (400, "InvalidParameter.DataInspection", "Inappropriate content.", "content_rejected", "sensitive"),
    (
        400,
        "Arrearage",
        "Access denied, please make sure your account is in good standing.",
        "quota_exhausted",
        "credit",
    ),
    (401, "InvalidApiKey", "Invalid API-key provided.", "authentication_failed", "API key"),
    (403, "AccessDenied", "Access denied.", "permission_denied", "denied access"),
    (403, "AccessDenied.Unpurchased", "Model access denied.", "permission_denied", "activated"),
    (403, "AllocationQuota.FreeTierOnly", "The free tier of the model has been exhausted.", "quota_exhausted", "quota"),
    (404, "ModelNotFound", "Model not found.", "model_not_found", "does not offer"),
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
    (error(429, "Throttling.AllocationQuota", "Allocated quota exceeded."), "rate_limited", "req-error"),
    (error(408, "RequestTimeOut", "Request timed out."), "timeout", "req-error"),
    (error(500, "InternalError.Algo", "Algorithm process error."), "provider_unavailable", "req-error"),
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


def test_a_slow_submit_times_out(dashscope, httpserver, user, media_root, settings):
    dashscope(TIMEOUT_SECONDS=0.05)

    def slow(request: Request) -> Response:
        time.sleep(0.15)
        return as_response(submitted())

    httpserver.expect_request(SUBMIT, method="POST").respond_with_handler(slow)
    task = run(dashscope_task(user))
    assert_failed_cleanly(task, media_root, "timeout")
    assert task.attempts == settings.PROVIDER_MAX_ATTEMPTS


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
        job("FAILED", code="InternalError.Algo", message="Algorithm process error."),
        "generation_failed",
        "(Algorithm process error.)",
    ),
    (job("FAILED", code="Arrearage", message="Account overdue."), "quota_exhausted", "credit"),
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


@pytest.mark.parametrize("answer", [job("UNKNOWN"), error(400, "InvalidParameter", "task id is invalid")])
def test_check_passes_when_the_key_is_accepted(dashscope, httpserver, answer):
    provider = dashscope()
    serve(httpserver, "/api/v1/tasks/00000000-0000-0000-0000-000000000000", "GET", [answer])
    provider.check()


def test_check_reports_a_refused_key(dashscope, httpserver):
    provider = dashscope()
    serve(
        httpserver,
        "/api/v1/tasks/00000000-0000-0000-0000-000000000000",
        "GET",
        [error(401, "InvalidApiKey", "Invalid API-key provided.")],
    )
    with pytest.raises(PermanentProviderError) as raised:
        provider.check()
    assert raised.value.code == "authentication_failed"
