"""Edges an attacker found (security review, findings 4, 8, 10 and the hardening notes): every
way of making a task counts against GENERATE_RATE, the API's 500 is JSON, any tag name can be
removed through the API, images are not cached for a year, and can be had without metadata."""

from __future__ import annotations

import io

import pytest
from django.test import Client
from django.urls import path, reverse
from PIL import Image as PILImage

from config.urls import urlpatterns as site_urlpatterns
from generator.api.http import api_view
from generator.models import Task

from ..factories import FinishedTaskFactory, TagFactory, TaskFactory


def test_retry_counts_against_the_generation_rate(auth_client, user, settings, ratelimit_clock):
    settings.GENERATE_RATE = "3/m"
    canceled = TaskFactory(owner=user, status=Task.Status.CANCELED)
    answers = [auth_client.post(reverse("generator:task_retry", args=[canceled.pk])).status_code for _ in range(4)]
    assert answers == [302, 302, 302, 429]
    assert Task.objects.filter(owner=user).count() == 4  # the canceled one and three retries
    # The same counter as the create page and the API: the next generation is refused too.
    response = auth_client.post("/api/v1/generate", {"prompt": "a kite"}, content_type="application/json")
    assert response.status_code == 429 and response.json()["error"] == "rate_limit_exceeded"


def test_a_retry_over_the_rate_says_why_on_the_history_page(auth_client, user, settings, ratelimit_clock):
    settings.GENERATE_RATE = "1/m"
    failed = TaskFactory(owner=user, status=Task.Status.FAILED)
    auth_client.post(reverse("generator:task_retry", args=[failed.pk]))
    response = auth_client.post(reverse("generator:task_retry", args=[failed.pk]))
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1
    assert "faster than this server allows" in response.content.decode()
    htmx = auth_client.post(reverse("generator:task_retry", args=[failed.pk]), HTTP_HX_REQUEST="true")
    assert htmx.status_code == 429 and htmx["HX-Retarget"] == "#form-problem"


@api_view("GET")
def explode(request):
    raise RuntimeError("a bug")


urlpatterns = [path("api/v1/test-explode", explode), *site_urlpatterns]
handler500 = "generator.views.errors.server_error"


@pytest.mark.urls(__name__)
def test_an_api_500_is_json_and_a_page_500_is_html(user):
    client = Client(raise_request_exception=False)
    client.force_login(user)
    response = client.get("/api/v1/test-explode")
    assert response.status_code == 500 and response["Content-Type"] == "application/json"
    assert response.json()["error"] == "server_error"
    assert "a bug" not in response.content.decode()


def test_the_site_uses_the_json_aware_500_handler():
    from config import urls

    assert urls.handler500 == "generator.views.errors.server_error"


@pytest.mark.parametrize("name", ["a/b", "..", "50%", "a b", "#x"])
def test_any_tag_name_can_be_removed_through_the_api(auth_client, user, name):
    task = FinishedTaskFactory(owner=user, images__files=False)
    image = task.images.get()
    image.tags.add(TagFactory(owner=user, name=name))
    quoted = "".join(f"%{byte:02X}" if chr(byte) in "/.%# " else chr(byte) for byte in name.encode())
    response = auth_client.delete(f"/api/v1/images/{image.pk}/tags/{quoted}")
    assert response.status_code == 204
    assert not image.tags.exists()


def test_images_are_cached_for_a_day_and_then_revalidated(auth_client, completed_task):
    image = completed_task.images.first()
    for url in (image.url, image.thumbnail_url):
        cache_control = auth_client.get(url)["Cache-Control"]
        assert cache_control == "private, max-age=86400, must-revalidate"
        assert "immutable" not in cache_control


def test_an_image_can_be_downloaded_without_its_prompt(auth_client, completed_task):
    image = completed_task.images.first()
    with_text = PILImage.open(io.BytesIO(b"".join(auth_client.get(image.download_url).streaming_content)))
    assert completed_task.prompt in with_text.text["parameters"]
    response = auth_client.get(image.bare_download_url)
    assert response.status_code == 200 and response["Content-Disposition"].startswith("attachment")
    bare = PILImage.open(io.BytesIO(response.content))
    assert bare.text == {} and completed_task.prompt.encode() not in response.content
    assert bare.size == with_text.size and bare.tobytes() == with_text.tobytes()


def test_another_persons_image_is_not_downloadable_without_metadata_either(other_client, completed_task):
    image = completed_task.images.first()
    assert other_client.get(image.bare_download_url).status_code == 404


def test_an_unknown_api_path_is_a_json_404(auth_client):
    response = auth_client.get("/api/v1/no-such-endpoint")
    assert response.status_code == 404 and response.json()["error"] == "not_found"
