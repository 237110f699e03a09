"""The OpenAI flavour: its model table, its error table (x-should-retry, Retry-After), the
organization and project headers, its timeouts, its model list, and its requests side by side
with the official `openai` client's for the same call (also for Ark and SiliconFlow bodies the
client can express through extra_body), against one local server."""

from __future__ import annotations

import base64
import io
import time
from datetime import date

import openai as openai_sdk
import pytest
from PIL import Image as PILImage
from werkzeug import Request, Response

from generator.models import Task
from generator.providers import PermanentProviderError, ProviderError
from generator.providers import openai_compatible as module
from generator.providers.base import GenerationRequest
from generator.providers.errors import CODES_WITH_DETAIL, MESSAGES, Kind
from generator.providers.flavors import ark, siliconflow
from generator.providers.flavors import openai as flavor
from generator.scheduler.inline import run_task

from .factories import TaskFactory

KEY = "sk-test-key"
GENERATIONS = "/v1/images/generations"


def b64_png() -> str:
    out = io.BytesIO()
    PILImage.new("RGB", (8, 8), "teal").save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


def answer(httpserver, body: dict, status: int = 200, headers: dict | None = None) -> None:
    httpserver.expect_request(GENERATIONS, method="POST").respond_with_json(body, status=status, headers=headers)


def answer_images(httpserver, count: int) -> None:
    answer(httpserver, {"created": 1, "data": [{"b64_json": b64_png()} for _ in range(count)]})


def generations(httpserver) -> list[Request]:
    return [request for request, _ in httpserver.log if request.path == GENERATIONS]


def request(model: str = "gpt-image-2", **fields) -> GenerationRequest:
    return GenerationRequest(**{"prompt": "a fox", "model": model, "width": 1024, "height": 1024, **fields})


def refused(provider, **fields) -> ProviderError:
    with pytest.raises(ProviderError) as raised:
        provider.generate(request(**fields))
    return raised.value


@pytest.fixture(autouse=True)
def attempts(settings):
    settings.PROVIDER_MAX_ATTEMPTS = 3


@pytest.fixture
def configure(configure_provider, httpserver):
    def configure(name: str = "openai", **values):
        defaults = {"API_KEY": KEY, "BASE_URL": httpserver.url_for("/v1"), "SELF_HOSTED": True}
        return configure_provider(name, **{**defaults, **values})

    return configure


def run(user, model: str, **fields) -> Task:
    task = TaskFactory(owner=user, provider="openai", model=model, **fields)
    run_task(str(task.pk))
    task.refresh_from_db()
    return task


# --- the model table ------------------------------------------------------------------------


def test_the_defaults_are_current_gpt_image_models(configure):
    models = configure().models()
    assert [m.id for m in models] == list(flavor.DEFAULT_MODELS)
    assert all(m.id.startswith("gpt-image-") and m.id in flavor.OPENAI_MODELS for m in models)
    assert not any(flavor.OPENAI_MODELS[m.id].is_shut_down() for m in models)


@pytest.mark.parametrize("model", [*flavor.DEFAULT_MODELS, "gpt-image-2.5-flare", "gpt-image-3-preview"])
def test_gpt_image_models_take_the_documented_sizes(configure, model):
    (info,) = configure(MODELS=[model]).models()
    assert (info.max_images, info.supports_seed, info.supports_negative_prompt) == (10, False, False)
    for width, height in [(1024, 1024), (1536, 1024), (1024, 1536), (1536, 864), (3840, 2160), (2160, 3840)]:
        assert info.size_error(width, height) is None, (width, height)
    assert info.size_error(1440, 480) is None  # 3:1 at the smallest area
    assert "multiples of 16" in info.size_error(1000, 1000)
    assert "aspect ratio" in info.size_error(2048, 512)  # 4:1
    assert "at least 655,360 pixels" in info.size_error(512, 512)
    assert info.size_error(3840, 3840)  # over 3840 × 2160 worth of pixels
    assert info.size_error(4096, 1536)  # an edge over 3840


def test_an_unknown_model_outside_the_gpt_image_family_gets_the_standard_sizes(configure):
    (info,) = configure(MODELS=["gateway-image"]).models()
    assert info.sizes == flavor.STANDARD_SIZES and info.max_images == 10


def test_up_to_ten_images_come_from_one_call(configure, httpserver):
    provider = configure(MODELS=["gpt-image-2.6-flare"])
    answer_images(httpserver, 10)
    results = provider.generate(request("gpt-image-2.6-flare", width=2048, height=1152, num_images=10))
    assert len(results) == 10
    (sent,) = generations(httpserver)
    assert sent.get_json() == {"model": "gpt-image-2.6-flare", "prompt": "a fox", "size": "2048x1152", "n": 10}


def test_an_unknown_gpt_image_model_makes_a_set_in_one_call(configure, httpserver, user):
    configure(MODELS=["gpt-image-2.5-flare-2027-01-01"])
    answer_images(httpserver, 3)
    task = run(user, "gpt-image-2.5-flare-2027-01-01", width=1536, height=1024, num_images=3)
    assert task.status == Task.Status.COMPLETED and task.images.count() == 3
    (sent,) = generations(httpserver)
    assert sent.get_json()["n"] == 3 and sent.get_json()["size"] == "1536x1024"


def test_quality_and_background_are_sent_where_the_model_takes_them(configure, httpserver):
    answer_images(httpserver, 1)
    configure(QUALITY="high", BACKGROUND="opaque").generate(request())
    configure(MODELS=["gpt-image-2.5-sunburst"], QUALITY="max").generate(request("gpt-image-2.5-sunburst"))
    configure(QUALITY="max").generate(request("gpt-image-2"))  # max is for the 2.5 models only
    configure(MODELS=["gateway-image"], QUALITY="high").generate(request("gateway-image"))
    sent = [r.get_json() for r in generations(httpserver)]
    assert (sent[0]["quality"], sent[0]["background"]) == ("high", "opaque")
    assert sent[1]["quality"] == "max"
    assert "quality" not in sent[2] and "quality" not in sent[3]


def test_a_retired_model_is_told_as_retired_after_one_call(configure, httpserver, user):
    configure(MODELS=["gpt-image-1"])
    vendor = {
        "message": "The model `gpt-image-1` does not exist.",
        "type": "invalid_request_error",
        "code": "model_not_found",
    }
    answer(httpserver, {"error": vendor}, status=404)
    task = run(user, "gpt-image-1", width=1024, height=1024)
    assert (task.status, task.error_code, task.attempts) == (Task.Status.FAILED, "model_retired", 1)
    assert task.error_message == MESSAGES["model_retired"]


def test_a_not_found_model_the_vendor_calls_deprecated_is_retired(configure, httpserver):
    vendor = {"message": "The model `gpt-image-9` has been deprecated.", "code": "model_not_found"}
    answer(httpserver, {"error": vendor}, status=404)
    error = refused(configure(MODELS=["gpt-image-9"]), model="gpt-image-9")
    assert error.code == "model_retired" and error.kind == Kind.ACCOUNT


# --- the error table ------------------------------------------------------------------------

ERRORS = [
    # (status, error object, our catalogue key, class)
    (
        400,
        {"code": "moderation_blocked", "moderation_details": {"moderation_stage": "input"}},
        "content_rejected",
        Kind.CONTENT,
    ),
    (
        400,
        {"code": "moderation_blocked", "moderation_details": {"moderation_stage": "output"}},
        "output_rejected",
        Kind.CONTENT,
    ),
    (400, {"code": "moderation_blocked", "moderation_stage": "output"}, "output_rejected", Kind.CONTENT),
    (
        400,
        {"code": "content_policy_violation", "type": "image_generation_user_error"},
        "content_rejected",
        Kind.CONTENT,
    ),
    (429, {"code": "insufficient_quota", "type": "insufficient_quota"}, "quota_exhausted", Kind.ACCOUNT),
    (429, {"code": None, "type": "insufficient_quota"}, "quota_exhausted", Kind.ACCOUNT),
    (400, {"code": "billing_hard_limit_reached"}, "quota_exhausted", Kind.ACCOUNT),
    (429, {"code": "credit_balance_exhausted"}, "quota_exhausted", Kind.ACCOUNT),
    (404, {"code": "model_not_found"}, "model_not_found", Kind.ACCOUNT),
    (401, {"code": "invalid_api_key"}, "authentication_failed", Kind.ACCOUNT),
    (
        403,
        {"message": "Your organization must be verified to use the model `gpt-image-2`.", "code": None},
        "permission_denied.verification",
        Kind.ACCOUNT,
    ),
    (403, {"code": "unsupported_country_region_territory"}, "permission_denied", Kind.ACCOUNT),
    (400, {"code": "invalid_value", "param": "size"}, "invalid_request", Kind.REQUEST),
    (408, {"type": "server_error"}, "provider_unavailable", Kind.TRANSIENT),
    (409, {"type": "invalid_request_error"}, "provider_unavailable", Kind.TRANSIENT),
    (429, {"code": "rate_limit_exceeded", "type": "requests"}, "rate_limited", Kind.TRANSIENT),
    (500, {"type": "server_error"}, "provider_unavailable", Kind.TRANSIENT),
    (503, {"code": "server_is_overloaded"}, "provider_unavailable", Kind.TRANSIENT),
]


@pytest.mark.parametrize("status,error,key,kind", ERRORS)
def test_openai_errors_are_sorted_into_their_class(configure, httpserver, status, error, key, kind):
    vendor = {"message": "Vendor says no.", "type": "invalid_request_error", "param": None, **error}
    answer(httpserver, {"error": vendor}, status=status, headers={"x-request-id": "req_err"})
    raised = refused(configure())
    code = key.partition(".")[0]
    assert (raised.code, raised.kind, raised.transient) == (code, kind, kind == Kind.TRANSIENT)
    detail = f" ({vendor['message']})" if code in CODES_WITH_DETAIL else ""
    assert raised.message == MESSAGES[key] + detail and raised.request_id == "req_err"


@pytest.mark.parametrize(
    "status,error,verdict,transient",
    [
        (400, {"code": "invalid_value"}, "true", True),  # the server knows better than the status
        (429, {"code": "rate_limit_exceeded"}, "false", False),
        (500, {"type": "server_error"}, "false", False),
        (409, {}, "false", False),
        (429, {"code": "rate_limit_exceeded"}, "maybe", True),  # not a verdict: the table decides
    ],
)
def test_x_should_retry_wins_over_the_status(configure, httpserver, status, error, verdict, transient):
    answer(httpserver, {"error": {"message": "m", **error}}, status=status, headers={"x-should-retry": verdict})
    assert refused(configure()).transient is transient


def test_a_should_not_retry_answer_ends_the_task_after_one_call(configure, httpserver, user, media_root):
    configure()
    body = {"error": {"message": "Slow down.", "code": "rate_limit_exceeded"}}
    answer(httpserver, body, status=429, headers={"x-should-retry": "false", "Retry-After": "5"})
    task = run(user, "gpt-image-2", width=1024, height=1024)
    assert (task.status, task.error_code, task.attempts) == (Task.Status.FAILED, "rate_limited", 1)
    assert len(generations(httpserver)) == 1


def test_a_should_retry_answer_keeps_the_wait_it_asks_for(configure, httpserver):
    answer(
        httpserver,
        {"error": {"code": "invalid_value"}},
        status=400,
        headers={"x-should-retry": "true", "retry-after-ms": "1500"},
    )
    raised = refused(configure())
    assert raised.transient and raised.retry_after == 1.5


def test_retry_after_ms_is_read_before_retry_after(configure, httpserver):
    answer(
        httpserver,
        {"error": {"code": "rate_limit_exceeded"}},
        status=429,
        headers={"retry-after-ms": "250", "Retry-After": "30"},
    )
    raised = refused(configure())
    assert raised.code == "rate_limited" and raised.retry_after == 0.25


def test_check_obeys_x_should_retry_too(configure, httpserver):
    httpserver.expect_request("/v1/models").respond_with_json(
        {"error": {"type": "server_error"}}, status=500, headers={"x-should-retry": "false"}
    )
    with pytest.raises(ProviderError) as raised:
        configure().check()
    assert raised.value.code == "provider_unavailable" and not raised.value.transient


# --- organization and project ---------------------------------------------------------------


def test_organization_and_project_are_sent_when_set(configure, httpserver):
    answer_images(httpserver, 1)
    httpserver.expect_request("/v1/models").respond_with_json({"data": [{"id": "gpt-image-2"}]})
    provider = configure(ORGANIZATION=" org-123 ", PROJECT="proj_abc")
    provider.generate(request())
    provider.check()
    configure(ORGANIZATION="", PROJECT="").generate(request())
    with_ids, models, without = (request for request, _ in httpserver.log)
    for sent in (with_ids, models):
        assert (sent.headers["OpenAI-Organization"], sent.headers["OpenAI-Project"]) == ("org-123", "proj_abc")
    assert "OpenAI-Organization" not in without.headers and "OpenAI-Project" not in without.headers


def test_another_flavour_sends_no_openai_headers(configure, httpserver):
    provider = configure(FLAVOR="siliconflow", ORGANIZATION="org-123", PROJECT="proj_abc")
    assert "OpenAI-Organization" not in provider._headers() and "OpenAI-Project" not in provider._headers()


# --- timeouts -------------------------------------------------------------------------------


@pytest.fixture
def sent_timeouts(monkeypatch):
    seen: list[tuple[str, tuple[float, float], bool]] = []
    real_send = module.http.send

    def send(method, url, *, timeout, resend_safe=True, **kwargs):
        seen.append((method, timeout, resend_safe))
        return real_send(method, url, timeout=timeout, resend_safe=resend_safe, **kwargs)

    monkeypatch.setattr(module.http, "send", send)
    return seen


def test_openai_waits_as_long_as_its_sdk_and_never_resends_a_generation(configure, httpserver, sent_timeouts):
    answer_images(httpserver, 1)
    httpserver.expect_request("/v1/models").respond_with_json({"data": []})
    provider = configure()
    assert provider.timeout == (10.0, 600.0)
    provider.generate(request())
    provider.check()
    # The generation is paid and not sent again after a read timeout; the free listing needs no 600 s.
    assert sent_timeouts == [("POST", (10.0, 600.0), False), ("GET", (10.0, 120.0), True)]


def test_timeout_seconds_overrides_the_flavours_timeout(configure):
    assert configure(TIMEOUT_SECONDS=45.0).timeout == (10.0, 45.0)
    assert configure(FLAVOR="siliconflow", TIMEOUT_SECONDS=None).timeout == (10.0, 120.0)


def test_a_read_timeout_fails_for_good_saying_why(configure, httpserver):
    def slow(request: Request) -> Response:
        time.sleep(0.3)
        return Response("{}", content_type="application/json")

    httpserver.expect_request(GENERATIONS).respond_with_handler(slow)
    with pytest.raises(PermanentProviderError) as raised:
        configure(TIMEOUT_SECONDS=0.05).generate(request())
    assert raised.value.code == "timeout"
    assert raised.value.message == MESSAGES["timeout.not_resent"] % {"seconds": "0.05"}
    deadline = time.monotonic() + 2  # let the one-threaded server finish the abandoned call
    while not httpserver.log and time.monotonic() < deadline:
        time.sleep(0.02)


# --- the model list (check) -----------------------------------------------------------------


def test_check_leaves_out_models_whose_shutdown_date_has_come(configure, httpserver, monkeypatch):
    monkeypatch.setattr(flavor, "utc_today", lambda: date(2026, 12, 1))
    listing = [
        {"id": "gpt-image-2", "object": "model", "owned_by": "system", "shutdown_date": None},
        {"id": "gpt-image-2.6-flare", "object": "model", "owned_by": "system"},
        {"id": "gpt-image-2-2026-04-21", "shutdown_date": "2027-04-21"},  # announced, not yet
        {"id": "gpt-image-1", "shutdown_date": "2026-10-23"},
        {"id": "gpt-image-1.5", "shutdown_date": "2026-12-01"},  # today: shut down
        {"id": "dall-e-3", "shutdown_date": 1778544000},  # 2026-05-12 as a timestamp
        {"id": "odd-date", "shutdown_date": "soon"},  # unreadable: kept
    ]
    httpserver.expect_request("/v1/models").respond_with_json({"object": "list", "data": listing})
    assert configure().check() == {"gpt-image-2", "gpt-image-2.6-flare", "gpt-image-2-2026-04-21", "odd-date"}


def test_check_reads_no_listing_from_an_unexpected_body(configure, httpserver):
    httpserver.expect_request("/v1/models").respond_with_json({"models": ["gpt-image-2"]})
    assert configure().check() is None


# --- the same call through the official client ----------------------------------------------

COMPARED_HEADERS = ("Authorization", "Content-Type", "OpenAI-Organization", "OpenAI-Project")


@pytest.fixture
def sdk(httpserver, monkeypatch):
    """The official client at the local server: no retries, no settings from the environment."""
    for name in ("OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)

    def client(**options) -> openai_sdk.OpenAI:
        return openai_sdk.OpenAI(
            base_url=httpserver.url_for("/v1"),
            api_key=KEY,
            max_retries=0,
            http_client=openai_sdk.DefaultHttpxClient(trust_env=False),
            **options,
        )

    return client


def same_request(httpserver, through_sdk, through_atelier) -> tuple[dict, dict]:
    """Send the call both ways and return the two JSON bodies, after checking that path, method
    and the compared headers agree."""
    before = len(httpserver.log)
    through_sdk()
    through_atelier()
    sdk_request, ours = (request for request, _ in httpserver.log[before:])
    assert (ours.method, ours.path) == (sdk_request.method, sdk_request.path) == ("POST", GENERATIONS)
    for header in COMPARED_HEADERS:
        assert ours.headers.get(header) == sdk_request.headers.get(header), header
    return sdk_request.get_json(), ours.get_json()


def test_a_gpt_image_call_matches_the_official_clients(configure, httpserver, sdk):
    answer_images(httpserver, 3)
    client = sdk(organization="org-123", project="proj_abc")
    provider = configure(ORGANIZATION="org-123", PROJECT="proj_abc", QUALITY="high", BACKGROUND="transparent")
    theirs, ours = same_request(
        httpserver,
        lambda: client.images.generate(
            model="gpt-image-2.6-sunburst",
            prompt="a fox",
            size="1536x1024",
            n=3,
            quality="high",
            background="transparent",
        ),
        lambda: provider.generate(request("gpt-image-2.6-sunburst", width=1536, height=1024, num_images=3)),
    )
    assert ours == theirs


def test_a_plain_call_without_organization_matches_the_official_clients(configure, httpserver, sdk):
    answer_images(httpserver, 1)
    client, provider = sdk(), configure()
    theirs, ours = same_request(
        httpserver,
        lambda: client.images.generate(model="gpt-image-2", prompt="a fox", size="1024x1536", n=1),
        lambda: provider.generate(request(width=1024, height=1536)),
    )
    assert ours == theirs


def test_an_ark_body_matches_the_official_client_with_extra_body(configure, httpserver, sdk):
    model = ark.FLAVOR.default_models[0]
    answer_images(httpserver, 1)
    client, provider = sdk(), configure("ark")
    theirs, ours = same_request(
        httpserver,
        lambda: client.images.generate(
            model=model, prompt="a fox", size="2048x2048", response_format="b64_json", extra_body={"watermark": False}
        ),
        lambda: provider.generate(request(model, width=2048, height=2048)),
    )
    assert ours == theirs


def test_a_siliconflow_body_matches_the_official_client_with_extra_body(configure, httpserver, sdk):
    answer(httpserver, {"images": [{"b64_json": b64_png()}, {"b64_json": b64_png()}], "seed": 7})
    client, provider = sdk(), configure("siliconflow")
    documented = {
        "image_size": "1024x1024",
        "batch_size": 2,
        "seed": 7,
        "negative_prompt": "fog",
        "num_inference_steps": 20,
        "guidance_scale": 7.5,
    }
    theirs, ours = same_request(
        httpserver,
        lambda: client.images.generate(model=siliconflow.KOLORS, prompt="a fox", extra_body=documented),
        lambda: provider.generate(
            request(siliconflow.KOLORS, num_images=2, seed=7, negative_prompt="fog", steps=20, guidance_scale=7.5)
        ),
    )
    assert ours == theirs
