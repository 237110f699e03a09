"""VolcEngine Ark's flavour (generator/providers/flavors/ark.py): the current Seedream models and
their limits, the one error table, and the model list, against a local server playing Ark."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image as PILImage

from generator.models import Task
from generator.providers import ProviderError
from generator.providers.base import GenerationRequest
from generator.providers.errors import CODES_WITH_DETAIL, MESSAGES, Kind, code_of, kind_of
from generator.providers.flavors import ark
from generator.providers.flavors.ark import (
    ARK_CODES,
    SEEDREAM_4,
    SEEDREAM_4_5,
    SEEDREAM_5_FLASH,
    SEEDREAM_5_LITE,
    SEEDREAM_5_LITE_ALIAS,
    SEEDREAM_5_PRO,
    ark_code,
    judged_by_listing,
    read_listing,
)
from generator.scheduler.inline import run_task

from .factories import TaskFactory

KEY = "ark-test-key"
GENERATIONS = "/api/v3/images/generations"
RETIRED_SEEDREAM_3 = "doubao-seedream-3-0-t2i-250415"


def b64_png() -> str:
    out = io.BytesIO()
    PILImage.new("RGB", (32, 24), "teal").save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


@pytest.fixture(autouse=True)
def attempts(settings):
    settings.PROVIDER_MAX_ATTEMPTS = 3


@pytest.fixture
def configure(configure_provider, httpserver):
    def configure(**values):
        defaults = {"API_KEY": KEY, "BASE_URL": httpserver.url_for("/api/v3"), "SELF_HOSTED": True}
        return configure_provider("ark", **{**defaults, **values})

    return configure


def run(user, model: str, **fields) -> Task:
    task = TaskFactory(owner=user, provider="ark", model=model, **fields)
    run_task(str(task.pk))
    task.refresh_from_db()
    return task


# --- the models -----------------------------------------------------------------------------

# (model id, label, total pixels, as volcengine.com/docs/82379/1541523 gives them)
MODEL_LIMITS = [
    (SEEDREAM_5_PRO, "Seedream 5.0 Pro", 921_600, 4_624_220),
    (SEEDREAM_5_FLASH, "Seedream 5.0 Flash", 921_600, 4_624_220),
    (SEEDREAM_5_LITE, "Seedream 5.0 Lite", 3_686_400, 16_777_216),
    (SEEDREAM_5_LITE_ALIAS, "Seedream 5.0 Lite", 3_686_400, 16_777_216),
    (SEEDREAM_4_5, "Seedream 4.5", 3_686_400, 16_777_216),
    (SEEDREAM_4, "Seedream 4.0", 921_600, 16_777_216),
]


@pytest.mark.parametrize("model_id,label,low,high", MODEL_LIMITS)
def test_each_seedream_has_its_documented_area_and_shape(configure, model_id, label, low, high):
    (model,) = configure(MODELS=[model_id]).models()
    assert (model.label, model.min_pixels, model.max_pixels, model.max_aspect_ratio) == (label, low, high, 16)
    assert not model.supports_seed and not model.supports_guidance and not model.supports_steps
    assert not model.supports_negative_prompt and model.max_images == 4
    # The page's own examples: 3750x1250 is valid for 4.5 and 5.0 lite, 1500x1500 is not.
    assert (model.size_error(3750, 1250) is None) == (3750 * 1250 <= high)
    assert bool(model.size_error(1500, 1500)) == (1500 * 1500 < low)
    # Every size the menu suggests is one the model makes.
    assert model.suggested_sizes and all(model.size_error(w, h) is None for w, h in model.suggested_sizes)


def test_the_defaults_are_the_current_5_0_models(configure):
    defaults = [model.id for model in configure().models()]
    assert defaults == [SEEDREAM_5_LITE, SEEDREAM_5_PRO, SEEDREAM_5_FLASH]
    assert RETIRED_SEEDREAM_3 not in ark.ARK_MODELS


def test_an_unknown_id_gets_the_familys_range_not_the_narrowest_models(configure):
    endpoint, retired = configure(MODELS=["ep-20260101-abcde", RETIRED_SEEDREAM_3]).models()
    for model in (endpoint, retired):
        assert (model.min_pixels, model.max_pixels, model.max_aspect_ratio) == (921_600, 16_777_216, 16)
        assert not model.supports_seed and not model.supports_guidance
    # 1280x720 is in 5.0 pro's range and 4096x4096 in 5.0 lite's: both are offered.
    assert endpoint.size_error(1280, 720) is None and endpoint.size_error(4096, 4096) is None
    assert endpoint.size_error(1024, 512) and endpoint.size_error(16 * 1025, 1024)


def test_a_wide_picture_within_area_and_shape_is_sent(configure, httpserver, user):
    configure(MODELS=[SEEDREAM_5_LITE])
    httpserver.expect_request(GENERATIONS, method="POST").respond_with_json({"data": [{"b64_json": b64_png()}]})
    task = run(user, SEEDREAM_5_LITE, width=6240, height=2656)  # the page's 4K 21:9
    assert task.status == Task.Status.COMPLETED
    assert httpserver.log[0][0].get_json()["size"] == "6240x2656"


# --- the errors -----------------------------------------------------------------------------


def test_every_row_of_the_table_is_transient_account_content_or_request():
    kinds = {Kind.TRANSIENT, Kind.ACCOUNT, Kind.CONTENT, Kind.REQUEST}
    for row in ARK_CODES:
        assert row.key in MESSAGES, row
        assert row.kind in kinds and kind_of(code_of(row.key)) == row.kind, row
    rows = [(row.code, row.wording) for row in ARK_CODES]
    assert len(rows) == len(set(rows))


@pytest.mark.parametrize(
    "code,message,key",
    [
        ("SetLimitExceeded", "", "quota_exhausted.usage_cap"),
        ("InvalidEndpoint.ClosedEndpoint", "", "provider_unavailable.endpoint_closed"),
        ("InvalidEndpoint.NotFound", "", "model_not_found"),  # the parent's row
        ("MissingParameter.prompt", "", "invalid_request"),
        ("InvalidParameter.UnsupportedParameter", "", "invalid_request"),
        ("OutputImageSensitiveContentDetected.DeepFake", "", "output_rejected"),
        ("InputImageSensitiveContentDetected.PrivacyInformation", "", "content_rejected"),
        ("InputTextSensitiveContentDetected.PolicyViolation", "", "content_rejected.intellectual_property"),
        ("OperationDenied.ServiceOverdue", "", "quota_exhausted.billing"),
        ("OperationDenied.PermissionDenied", "", "permission_denied.http_403"),
        (
            "QuotaExceeded",
            "Your account has exhausted its free trial quota for the [x] model.",
            "quota_exhausted.free_quota",
        ),
        ("QuotaExceeded", "The request has exceeded the quota. Request id: 1", "rate_limited"),
        ("QuotaExceeded", "You have exceeded the 5-hour usage quota. It will reset at 12:00.", "quota_exhausted"),
    ],
)
def test_a_code_finds_its_own_row_or_its_parents(code, message, key):
    assert ark_code(code, message).key == key


def test_a_code_the_table_does_not_name_goes_by_its_kind_or_status(configure, httpserver):
    provider = configure(MODELS=[SEEDREAM_5_PRO])
    cases = [
        ({"code": "OutputVideoSensitiveContentDetected.NewKind"}, 400, "output_rejected"),
        ({"code": "InputFileRiskDetection"}, 400, "content_rejected"),
        ({"code": "SomethingNew"}, 503, "provider_unavailable"),
    ]
    for error, status, code in cases:
        httpserver.clear()
        httpserver.expect_request(GENERATIONS).respond_with_json({"error": error}, status=status)
        with pytest.raises(ProviderError) as raised:
            provider.generate(GenerationRequest(prompt="p", model=SEEDREAM_5_PRO, width=1024, height=1024))
        assert raised.value.code == code


def test_the_usage_cap_is_not_retried_and_asks_an_administrator(configure, httpserver, user, media_root):
    configure()
    vendor = "The request failed because you have reached the inference limit you set for the model. Request id: 2026x"
    httpserver.expect_request(GENERATIONS).respond_with_json(
        {"error": {"code": "SetLimitExceeded", "message": vendor, "type": "TooManyRequests"}}, status=429
    )
    task = run(user, SEEDREAM_5_LITE, width=2048, height=2048)
    assert (task.status, task.error_code, task.attempts) == (Task.Status.FAILED, "quota_exhausted", 1)
    detail = f" ({vendor})" if "quota_exhausted" in CODES_WITH_DETAIL else ""
    assert task.error_message == MESSAGES["quota_exhausted.usage_cap"] + detail  # not "The provider is busy"
    assert len(httpserver.log) == 1


def test_a_closed_endpoint_is_retried_and_the_next_attempt_completes(configure, httpserver, user):
    configure(MODELS=["ep-20260101-abcde"])
    closed = {"code": "InvalidEndpoint.ClosedEndpoint", "message": "The request targeted an endpoint that is closed."}
    httpserver.expect_ordered_request(GENERATIONS).respond_with_json({"error": closed}, status=400)
    httpserver.expect_ordered_request(GENERATIONS).respond_with_json({"data": [{"b64_json": b64_png()}]})
    task = run(user, "ep-20260101-abcde", width=1280, height=720)
    assert (task.status, task.attempts) == (Task.Status.COMPLETED, 2)


def test_a_closed_endpoint_that_stays_closed_says_so(configure, httpserver, user, media_root):
    configure(MODELS=["ep-20260101-abcde"])
    closed = {"code": "InvalidEndpoint.ClosedEndpoint", "message": "closed"}
    httpserver.expect_request(GENERATIONS).respond_with_json({"error": closed}, status=400)
    task = run(user, "ep-20260101-abcde", width=1280, height=720)
    assert (task.status, task.error_code, task.attempts) == (Task.Status.FAILED, "provider_unavailable", 3)
    assert task.error_message == MESSAGES["provider_unavailable.endpoint_closed"]


# --- the model list -------------------------------------------------------------------------

LISTING = {
    "object": "list",
    "data": [
        {
            "id": RETIRED_SEEDREAM_3,
            "name": "doubao-seedream-3-0-t2i",
            "status": "Shutdown",
            "domain": "ImageGeneration",
        },
        {"id": SEEDREAM_4, "name": "doubao-seedream-4-0", "status": "Retiring", "domain": "ImageGeneration"},
        {"id": SEEDREAM_5_LITE, "name": "doubao-seedream-5-0", "domain": "ImageGeneration"},
        {"id": SEEDREAM_5_PRO, "name": "doubao-seedream-5-0-pro", "domain": "ImageGeneration"},
        {"name": "no id"},
        "junk",
    ],
}


def test_the_listing_leaves_out_shut_down_models_and_keeps_retiring_ones():
    listed = read_listing(LISTING)
    assert listed == {SEEDREAM_4, SEEDREAM_5_LITE, SEEDREAM_5_LITE_ALIAS, SEEDREAM_5_PRO}
    assert read_listing({"data": None}) is None and read_listing(["x"]) is None


def test_the_check_lists_ark_models_and_never_retires_an_endpoint_id(configure, httpserver):
    httpserver.expect_request("/api/v3/models", method="GET").respond_with_json(LISTING)
    provider = configure(MODELS=[SEEDREAM_5_PRO, RETIRED_SEEDREAM_3, "ep-20260101-abcde"])
    listing = provider.check()
    assert {SEEDREAM_5_PRO, "ep-20260101-abcde"} <= listing and RETIRED_SEEDREAM_3 not in listing
    assert not judged_by_listing("ep-20260101-abcde") and judged_by_listing(SEEDREAM_5_PRO)


def test_an_ark_without_the_model_list_is_only_proven_reachable(configure, httpserver):
    httpserver.expect_request("/api/v3/models", method="GET").respond_with_data("404 page not found", status=404)
    assert configure(MODELS=["ep-20260101-abcde"]).check() is None
    assert len(httpserver.log) == 1
