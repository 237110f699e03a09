"""Chat front ends' own requests to /v1/images/generations, replayed as they send them and read
the way they read the answer (no `openai` client in between)."""

from __future__ import annotations

import base64
import io

import pytest
import requests
from PIL import Image as PILImage

from generator.models import Image, Task

from . import test_gateway

pytestmark = pytest.mark.django_db(transaction=True)
# Fixtures shared with test_gateway: a person, their API token, a worker thread running the tasks.
user, token, worker = test_gateway.user, test_gateway.token, test_gateway.worker


def open_webui_generate(base_url: str, api_key: str, *, model: str, size: str, n: int = 1) -> list[tuple]:
    """What Open WebUI does with its "OpenAI" image engine (open-webui/open-webui,
    backend/open_webui/routers/images.py at 02530d50, image_generations()):

    - POST f"{IMAGES_OPENAI_API_BASE_URL}/images/generations" (the base URL as typed in Admin
      Settings → Images, here http://host/v1), headers `Authorization: Bearer <key>` and
      `Content-Type: application/json`;
    - JSON body: `model` (IMAGE_GENERATION_MODEL, "dall-e-2" when unset), `prompt`, `n`, `size`
      (when one is set; IMAGE_SIZE defaults to "512x512"), and `response_format: "b64_json"`
      unless the model matches IMAGE_URL_RESPONSE_MODELS_REGEX_PATTERN (default "^gpt-image"),
      then the admin's extra IMAGES_OPENAI_API_PARAMS;
    - raise_for_status(), then for each item of `res["data"]`: its `url` when there is one
      (fetched with the same Authorization header; the content type must be image/*), else
      base64.b64decode(item["b64_json"]) taken as image/png.
    """
    body = {"model": model, "prompt": "a red bicycle", "n": n, "size": size}
    if not model.startswith("gpt-image"):
        body["response_format"] = "b64_json"
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    answer = requests.post(f"{base_url}/images/generations", json=body, headers=headers, timeout=60)
    answer.raise_for_status()
    pictures = []
    for item in answer.json()["data"]:
        if item.get("url"):
            fetched = requests.get(item["url"], headers={"Authorization": headers["Authorization"]}, timeout=10)
            fetched.raise_for_status()
            assert fetched.headers["content-type"].split("/")[0] == "image"
            pictures.append((fetched.content, fetched.headers["content-type"]))
        else:
            pictures.append((base64.b64decode(item["b64_json"]), "image/png"))
    return pictures


@pytest.fixture
def base_url(live_server, settings) -> str:
    settings.OPENAI_COMPAT_MODEL_ALIASES = {"dall-e-2": "offline:sketch-v1", "gpt-image-1": "offline:sketch-v1"}
    return f"{live_server.url}/v1"


def test_open_webui_with_its_default_model_and_size_gets_its_pictures(base_url, token, user, worker):
    pictures = open_webui_generate(base_url, token, model="dall-e-2", size="512x512", n=2)

    assert [PILImage.open(io.BytesIO(data)).size for data, _type in pictures] == [(512, 512), (512, 512)]
    assert {content_type for _data, content_type in pictures} == {"image/png"}
    task = Task.objects.get()
    assert (task.owner, task.source, task.prompt) == (user, Task.Source.OPENAI, "a red bicycle")
    assert Image.objects.filter(owner=user, tags__name="openai-api").count() == 2


def test_open_webui_with_a_gpt_image_model_and_size_auto_gets_base64(base_url, token, worker):
    """Open WebUI sends no response_format for ^gpt-image models (OpenAI's always answer in
    base64): Atelier answers those in base64 too, so nothing has to be fetched back."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    raw = requests.post(
        f"{base_url}/images/generations",
        json={"model": "gpt-image-1", "prompt": "a red bicycle", "n": 1, "size": "auto"},
        headers=headers,
        timeout=60,
    ).json()
    assert set(raw["data"][0]) == {"b64_json", "revised_prompt"}

    pictures = open_webui_generate(base_url, token, model="gpt-image-1", size="auto")
    assert PILImage.open(io.BytesIO(pictures[0][0])).size == (1024, 1024)


def test_librechats_image_tool_request_is_accepted(base_url, token, worker):
    """LibreChat's OpenAI image tool (api/app/clients/tools/structured/OpenAIImageTools.js) with
    IMAGE_GEN_OAI_BASEURL set sends model (IMAGE_GEN_OAI_MODEL, default gpt-image-1), prompt, n,
    background "auto", response_format "b64_json", output_format "png", quality "auto" and size
    "auto", and reads data[i].b64_json with the answer's output_format."""
    body = {
        "model": "gpt-image-1",
        "prompt": "a red bicycle",
        "n": 1,
        "background": "auto",
        "response_format": "b64_json",
        "output_format": "png",
        "quality": "auto",
        "size": "auto",
    }
    answer = requests.post(
        f"{base_url}/images/generations", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=60
    )
    assert answer.status_code == 200
    assert answer.json()["output_format"] == "png"
    assert base64.b64decode(answer.json()["data"][0]["b64_json"]).startswith(b"\x89PNG")
