"""SiliconFlow's flavour (generator/providers/flavors/siliconflow.py): its models and their
limits, the one error table, and the model list the catalogue reads, against a local server."""

from __future__ import annotations

import io

import pytest
from PIL import Image as PILImage

from generator import catalogue
from generator.models import ProviderStatus, Task
from generator.providers import ProviderError
from generator.providers.base import GenerationRequest
from generator.providers.errors import MESSAGES, Kind, code_of, kind_of
from generator.providers.flavors.siliconflow import (
    DOCUMENTED_SIZES,
    KOLORS,
    KOLORS_SIZES,
    QWEN_IMAGE,
    QWEN_IMAGE_SIZES,
    SILICONFLOW_CODES,
    siliconflow_code,
)
from generator.scheduler.inline import run_task

from .factories import TaskFactory

KEY = "sk-siliconflow-test"
GENERATIONS = "/v1/images/generations"
FLUX = "black-forest-labs/FLUX.2-pro"


def png() -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (32, 24), "teal").save(out, "PNG")
    return out.getvalue()


@pytest.fixture(autouse=True)
def attempts(settings):
    settings.PROVIDER_MAX_ATTEMPTS = 3


@pytest.fixture
def configure(configure_provider, httpserver):
    def configure(**values):
        defaults = {"API_KEY": KEY, "BASE_URL": httpserver.url_for("/v1"), "SELF_HOSTED": True}
        return configure_provider("siliconflow", **{**defaults, **values})

    return configure


def run(user, model: str, **fields) -> Task:
    task = TaskFactory(owner=user, provider="siliconflow", model=model, **fields)
    run_task(str(task.pk))
    task.refresh_from_db()
    return task


# --- the models -----------------------------------------------------------------------------


def test_the_defaults_are_the_two_models_the_page_describes(configure):
    kolors, qwen = configure().models()
    assert (kolors.id, kolors.sizes, kolors.guidance_range, kolors.steps_range) == (
        KOLORS,
        KOLORS_SIZES,
        (0.0, 20.0),
        (1, 100),
    )
    assert (qwen.id, qwen.sizes, qwen.guidance_range, qwen.steps_range) == (
        QWEN_IMAGE,
        QWEN_IMAGE_SIZES,
        (0.1, 20.0),
        (1, 100),
    )
    for model in (kolors, qwen):
        assert model.max_seed == 9_999_999_999 and model.max_images == 4 and model.supports_negative_prompt


def test_an_unknown_model_gets_the_pages_general_limits(configure):
    (flux,) = configure(MODELS=[FLUX]).models()
    assert flux.sizes == DOCUMENTED_SIZES and set(KOLORS_SIZES) | set(QWEN_IMAGE_SIZES) == set(DOCUMENTED_SIZES)
    assert flux.supports_steps and flux.steps_range == (1, 100) and flux.supports_negative_prompt
    assert not flux.supports_guidance and flux.max_seed == 9_999_999_999 and flux.max_images == 4


def test_an_unknown_model_is_sent_only_the_general_fields_one_picture_per_call(configure, httpserver, user):
    configure(MODELS=[FLUX])
    httpserver.expect_request("/out/f.png").respond_with_data(png(), content_type="image/png")
    httpserver.expect_request(GENERATIONS).respond_with_json({"images": [{"url": httpserver.url_for("/out/f.png")}]})
    task = run(
        user, FLUX, width=1328, height=1328, num_images=2, seed=7, steps=28, guidance_scale=3.5, negative_prompt="fog"
    )
    assert task.status == Task.Status.COMPLETED
    sent = [request.get_json() for request, _ in httpserver.log if request.path == GENERATIONS]
    common = {"model": FLUX, "prompt": task.prompt, "image_size": "1328x1328", "negative_prompt": "fog"}
    assert sent == [
        {**common, "seed": 7, "num_inference_steps": 28},
        {**common, "seed": 8, "num_inference_steps": 28},
    ]  # no batch_size, no guidance_scale, no cfg


# --- the errors -----------------------------------------------------------------------------


def test_every_row_of_the_table_is_transient_account_content_or_request():
    kinds = {Kind.TRANSIENT, Kind.ACCOUNT, Kind.CONTENT, Kind.REQUEST}
    for row in SILICONFLOW_CODES:
        assert row.key in MESSAGES, row
        assert row.kind in kinds and kind_of(code_of(row.key)) == row.kind, row
        assert (row.code is None) != (row.status is None), row


@pytest.mark.parametrize(
    "status,code,message,key",
    [
        (400, 20012, "Model does not exist. Please check it carefully.", "model_not_found"),
        (403, 30001, "Sorry, your account balance is insufficient", "quota_exhausted"),
        (402, 30001, "Sorry, your account balance is insufficient", "quota_exhausted"),
        (403, 30003, "The model is disabled.", "permission_denied"),
        (401, 30014, "Token is invalid.", "authentication_failed"),
        (503, 50505, "Model service overloaded. Please try again later.", "provider_unavailable"),
        (403, None, "余额不足", "quota_exhausted"),
        (403, None, "Forbidden", "permission_denied.http_403"),
        (400, None, "The input contains sensitive words.", "content_rejected"),
        (400, None, "batch_size must be at most 4", "invalid_request"),
        (429, None, "Request was rejected due to rate limiting. Details: IPD limit reached.", "rate_limited"),
        (504, None, "", "provider_unavailable"),
    ],
)
def test_a_code_wins_over_its_status_and_wording_tells_a_status_apart(status, code, message, key):
    assert siliconflow_code(status, code, message).key == key


def test_a_bare_string_or_an_openai_style_body_is_read_too(configure, httpserver):
    provider = configure()
    request = GenerationRequest(prompt="p", model=KOLORS, width=1024, height=1024)
    for body, status, code in [
        ("Invalid token", 401, "authentication_failed"),
        ({"error": {"message": "Your account balance is insufficient."}}, 403, "quota_exhausted"),
    ]:
        httpserver.clear()
        httpserver.expect_request(GENERATIONS).respond_with_json(body, status=status)
        with pytest.raises(ProviderError) as raised:
            provider.generate(request)
        assert raised.value.code == code and not raised.value.transient


# --- the model list -------------------------------------------------------------------------


def test_the_check_lists_the_accounts_text_to_image_models(configure, httpserver):
    httpserver.expect_request(
        "/v1/models",
        query_string={"type": "image", "sub_type": "text-to-image"},
        headers={"Authorization": f"Bearer {KEY}"},
    ).respond_with_json({"object": "list", "data": [{"id": KOLORS, "object": "model"}, {"id": FLUX}]})
    assert configure().check() == {KOLORS, FLUX}


def test_a_refused_key_fails_the_check(configure, httpserver):
    body = {"code": 30014, "message": "Token is invalid.", "data": None}
    httpserver.expect_request("/v1/models").respond_with_json(body, status=401)
    with pytest.raises(ProviderError) as raised:
        configure().check()
    assert raised.value.code == "authentication_failed" and not raised.value.transient


def test_the_catalogue_retires_a_configured_model_the_list_no_longer_names(configure, httpserver, db):
    configure(MODELS=[KOLORS, "black-forest-labs/FLUX.1-schnell"])
    httpserver.expect_request("/v1/models").respond_with_json({"data": [{"id": KOLORS}, {"id": QWEN_IMAGE}]})
    (result,) = catalogue.refresh(["siliconflow"])
    assert result.reachable and result.retired == ("black-forest-labs/FLUX.1-schnell",) and result.listed == 2
    assert ProviderStatus.objects.get(provider="siliconflow").retired_models == ["black-forest-labs/FLUX.1-schnell"]
