"""An OpenAI key and nothing else, as a new team would start: the current models are offered,
a 1536×1024 picture set of three comes from one call, and a model the service retires leaves
the page once the catalogue is checked. The service is a local double speaking OpenAI's API."""

from __future__ import annotations

import base64
import io
import json

import pytest
from django.core.management import call_command
from PIL import Image as PILImage
from playwright.sync_api import expect
from werkzeug import Request, Response

from generator.models import Task
from generator.providers.flavors import openai as openai_flavor
from tests.factories import PASSWORD, UserFactory

from .conftest import sign_in, wait_for_loaded_images

pytestmark = pytest.mark.browser

KEY = "sk-demo-key"
DEFAULTS = openai_flavor.FLAVOR.default_models


class FakeOpenAI:
    """GET /v1/models and POST /v1/images/generations, with OpenAI's bodies and errors."""

    def __init__(self) -> None:
        self.retired: set[str] = set()
        self.generations: list[dict] = []

    def models(self, request: Request) -> Response:
        listed = [
            {"id": model, "object": "model", "owned_by": "system"} for model in DEFAULTS if model not in self.retired
        ]
        return Response(json.dumps({"object": "list", "data": listed}), content_type="application/json")

    def generate(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {KEY}":
            return _error(401, "invalid_api_key", "Incorrect API key provided.")
        body = request.get_json()
        self.generations.append(body)
        if body["model"] in self.retired:
            return _error(404, "model_not_found", f"The model `{body['model']}` does not exist.")
        width, height = (int(side) for side in body["size"].split("x"))
        pictures = [{"b64_json": _png(width, height, index)} for index in range(body.get("n", 1))]
        return Response(json.dumps({"created": 1, "data": pictures}), content_type="application/json")


def _error(status: int, code: str, message: str) -> Response:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
    return Response(json.dumps(body), status=status, content_type="application/json")


def _png(width: int, height: int, index: int) -> str:
    out = io.BytesIO()
    PILImage.new("RGB", (width, height), (40 * index, 120, 200)).save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


@pytest.fixture
def openai_double(httpserver, configure_provider) -> FakeOpenAI:
    double = FakeOpenAI()
    httpserver.expect_request("/v1/models", method="GET").respond_with_handler(double.models)
    httpserver.expect_request("/v1/images/generations", method="POST").respond_with_handler(double.generate)
    # What OPENAI_API_KEY (and the double's address as OPENAI_BASE_URL) in the environment give.
    configure_provider("openai", API_KEY=KEY, BASE_URL=httpserver.url_for("/v1"))
    return double


def offered(page) -> list[str]:
    return page.locator("#id_model option").evaluate_all("options => options.map(option => option.value)")


def test_an_openai_key_alone_offers_todays_models_makes_three_in_one_call_and_drops_a_retired_one(
    page, live_server, openai_double
):
    assert len(DEFAULTS) >= 2, "the demo retires one default model and generates with another"
    current, retiring = DEFAULTS[0], DEFAULTS[-1]
    user = UserFactory()
    sign_in(page, live_server, user, PASSWORD)
    assert [f"openai:{model}" for model in DEFAULTS] == [
        value for value in offered(page) if value.startswith("openai:")
    ]

    page.get_by_label("Prompt", exact=True).fill("A lighthouse at dawn, risograph print")
    page.get_by_label("Provider and model").select_option(f"openai:{current}")
    page.get_by_label("Width", exact=True).fill("1536")
    page.get_by_label("Height", exact=True).fill("1024")
    page.get_by_label("Images").select_option("3")
    page.get_by_role("button", name="Generate").click()

    card = page.locator("#task-list .task-card").first
    expect(card).to_have_attribute("data-status", "completed", timeout=30_000)
    assert len(wait_for_loaded_images(page, "#task-list .task-card .thumbs img", 3)) == 3
    assert len(openai_double.generations) == 1
    [sent] = openai_double.generations
    assert (sent["model"], sent["size"], sent["n"]) == (current, "1536x1024", 3)
    task = Task.objects.get(owner=user)
    assert [(image.width, image.height) for image in task.images.all()] == [(1536, 1024)] * 3

    # The service retires a model (it answers model_not_found and lists it no more): after
    # `manage.py check_providers` the page no longer offers it.
    openai_double.retired.add(retiring)
    page.get_by_label("Provider and model").select_option(f"openai:{retiring}")
    page.get_by_label("Width", exact=True).fill("1024")
    page.get_by_label("Height", exact=True).fill("1024")
    page.get_by_label("Images").select_option("1")
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#task-list .task-card")).to_have_count(2)
    failed = page.locator("#task-list .task-card").first
    expect(failed).to_have_attribute("data-status", "failed", timeout=30_000)
    assert Task.objects.get(owner=user, model=retiring).error_code == "model_not_found"

    call_command("check_providers", "openai")
    page.reload()
    values = offered(page)
    assert f"openai:{retiring}" not in values and f"openai:{current}" in values
    assert page.errors == []
