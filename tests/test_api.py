from __future__ import annotations

import io
import json
import uuid

import pytest
from django.test import Client
from PIL import Image as PILImage

from generator.models import Task

from .factories import TaskFactory

GENERATE = "/api/v1/generate"


def post_json(client: Client, body, **extra):
    payload = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(GENERATE, payload, content_type="application/json", **extra)


def test_generate_creates_a_pending_task(auth_client, user):
    body = {
        "prompt": "a lantern in the rain",
        "negative_prompt": "text",
        "provider": "offline",
        "model": "sketch-v1",
        "width": 640,
        "height": 480,
        "num_images": 3,
        "steps": 30,
        "scale": 6.5,
        "seed": 99,
    }
    response = post_json(auth_client, body)
    assert response.status_code == 201
    data = response.json()
    assert set(data) == {"task_id", "status", "created_at", "estimated_time"} and data["status"] == "pending"
    # Seconds from recent offline tasks (tests/test_progress.py checks the figure), or null.
    assert data["estimated_time"] is None or isinstance(data["estimated_time"], float)
    task = Task.objects.get(pk=data["task_id"], owner=user)
    assert (task.width, task.height, task.num_images, task.steps, task.guidance_scale, task.seed) == (
        640,
        480,
        3,
        30,
        6.5,
        99,
    )


def test_generate_needs_only_a_prompt(auth_client):
    response = post_json(auth_client, {"prompt": "a lantern"})
    assert response.status_code == 201
    task = Task.objects.get()
    assert (task.provider, task.model, task.width, task.height, task.num_images, task.seed) == (
        "offline",
        "sketch-v1",
        1024,
        1024,
        1,
        None,
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x" * 5000}, "prompt"),
        ({"prompt": 42}, "prompt"),
        ({"prompt": "a", "width": 10, "height": 10}, "width"),
        ({"prompt": "a", "width": 4096, "height": 512}, "width"),
        ({"prompt": "a", "width": 512}, "height"),
        ({"prompt": "a", "num_images": 0}, "num_images"),
        ({"prompt": "a", "num_images": 9}, "num_images"),
        ({"prompt": "a", "num_images": True}, "num_images"),
        ({"prompt": "a", "seed": "abc"}, "seed"),
        ({"prompt": "a", "seed": 1.5}, "seed"),
        ({"prompt": "a", "seed": 2**40}, "seed"),
        ({"prompt": "a", "provider": "midjourney"}, "provider"),
        ({"prompt": "a", "model": "dall-e-3"}, "model"),
        ({"prompt": "a", "steps": 0}, "steps"),
        ({"prompt": "a", "scale": "high"}, "scale"),
    ],
)
def test_invalid_fields_get_a_400_per_field_and_no_task(auth_client, body, field):
    response = post_json(auth_client, body)
    assert response.status_code == 400
    data = response.json()
    assert data["error"] == "validation_error" and data["message"]
    assert field in data["details"] and all(isinstance(m, str) and m for m in data["details"][field])
    assert not Task.objects.exists()


@pytest.mark.parametrize("payload", ["{not json", "[1, 2]", "", '"prompt"', b"\xff\xfe"])
def test_malformed_json_is_a_clear_400(auth_client, payload):
    response = post_json(auth_client, payload)
    assert response.status_code == 400
    assert response.json()["error"] == "validation_error"
    assert "body" in response.json()["details"]
    assert not Task.objects.exists()


def test_signed_out_clients_get_401(client, db):
    response = post_json(client, {"prompt": "a"})
    assert response.status_code == 401
    assert response.json() == {"error": "not_authenticated", "message": "Sign in to use the API."}
    assert client.get(f"/api/v1/task/{uuid.uuid4()}").status_code == 401


def test_session_clients_must_send_the_csrf_token(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get("/")  # sets the csrftoken cookie
    refused = post_json(client, {"prompt": "a"})
    assert refused.status_code == 403 and refused.json()["error"] == "csrf_failed"
    accepted = post_json(client, {"prompt": "a"}, HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)
    assert accepted.status_code == 201


def test_wrong_method_is_a_json_405(auth_client):
    response = auth_client.get(GENERATE)
    assert response.status_code == 405 and response.json()["error"] == "method_not_allowed"


def test_task_detail_has_the_contract_shape(auth_client, completed_task):
    response = auth_client.get(f"/api/v1/task/{completed_task.pk}")
    assert response.status_code == 200
    data = response.json()
    assert set(data) == {
        "task_id",
        "status",
        "progress",
        "prompt",
        "original_prompt",
        "negative_prompt",
        "provider",
        "model",
        "width",
        "height",
        "num_images",
        "steps",
        "guidance_scale",
        "seed",
        "images",
        "error",
        "created_at",
        "started_at",
        "completed_at",
        "estimated_time",
        "preset",  # the style preset applied, or null
    }
    assert data["status"] == "completed" and data["progress"] == 100 and data["error"] is None
    assert data["estimated_time"] is None  # only while it has not finished
    assert data["completed_at"] and data["started_at"]
    assert [image["seed"] for image in data["images"]] == [1234, 1235]
    first = data["images"][0]
    assert set(first) == {"image_id", "url", "thumbnail_url", "width", "height", "file_size", "seed"}
    original = auth_client.get(first["url"])
    assert original.status_code == 200 and original["Content-Type"] == "image/png"
    content = b"".join(original.streaming_content)
    assert len(content) == first["file_size"]
    assert PILImage.open(io.BytesIO(content)).text["parameters"].startswith(completed_task.prompt)
    thumbnail = auth_client.get(first["thumbnail_url"])
    assert thumbnail.status_code == 200 and thumbnail["Content-Type"] == "image/webp"
    assert "private" in thumbnail["Cache-Control"]


def test_a_failed_task_reports_its_error(auth_client, user):
    task = TaskFactory(owner=user)
    task.mark_failed("quota_exhausted", "Your provider account has no credit left.")
    data = auth_client.get(f"/api/v1/task/{task.pk}").json()
    assert data["status"] == "failed"
    assert data["error"] == {"code": "quota_exhausted", "message": "Your provider account has no credit left."}


def test_unknown_and_foreign_tasks_are_404(auth_client, other_client, completed_task):
    for client, task_id in ((auth_client, uuid.uuid4()), (other_client, completed_task.pk)):
        response = client.get(f"/api/v1/task/{task_id}")
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"


def test_another_persons_images_and_thumbnails_are_404(other_client, completed_task):
    image = completed_task.images.first()
    for url in (image.url, image.thumbnail_url, image.download_url):
        assert other_client.get(url).status_code == 404


def test_signed_out_visitors_cannot_fetch_images(client, completed_task):
    image = completed_task.images.first()
    assert client.get(image.url).status_code == 401
    assert client.get(image.thumbnail_url).status_code == 401


def test_the_download_link_is_an_attachment(auth_client, completed_task):
    image = completed_task.images.first()
    response = auth_client.get(image.download_url)
    assert response["Content-Disposition"].startswith("attachment")


def test_a_browser_never_downloads_the_same_thumbnail_twice(auth_client, completed_task):
    image = completed_task.images.first()
    first = auth_client.get(image.thumbnail_url)
    again = auth_client.get(image.thumbnail_url, HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304


def test_a_missing_file_is_a_404_not_a_500(auth_client, completed_task):
    image = completed_task.images.first()
    image.file.storage.delete(image.file.name)
    assert auth_client.get(image.url).status_code == 404


def test_healthz_is_public(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
