"""API_RATE: every API endpoint counts a person's calls and answers 429 with Retry-After once
they are over it, tokens and sessions alike, changing nothing. Image files a signed-in page
loads (a gallery shows dozens at once) are not counted."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts.tokens import create_token
from generator.models import Image, Task

from .test_ownership import PARAMETERS, ROUTES, app_routes, owned, snapshot  # noqa: F401 (owned is a fixture)

API_ROUTES = [walked for walked in app_routes() if walked.route.startswith("api/")]
# Every rate window here stays open for the whole test (see the fixture in conftest.py).
pytestmark = pytest.mark.usefixtures("ratelimit_clock")


def url_of(walked, objects: dict) -> str:
    kwargs = {name: objects[PARAMETERS[name][0]].pk for name in walked.parameters}
    return reverse(walked.name, kwargs=kwargs)


def call(client: Client, method: str, url: str, **headers):
    if method == "POST":
        return client.post(url, {}, content_type="application/json", **headers)
    return getattr(client, method.lower())(url, **headers)


def test_every_api_endpoint_is_walked():
    assert {walked.name for walked in API_ROUTES} >= {"api:generate", "api:task_detail", "api:image_thumbnail"}


@pytest.mark.parametrize("walked", API_ROUTES, ids=lambda walked: walked.name)
def test_a_token_over_the_api_rate_gets_429_and_changes_nothing(walked, user, owned, settings):  # noqa: F811
    settings.API_RATE = "2/m"
    settings.SHARING = "public"  # every sharing endpoint exists (off, they are 404s before any counting)
    token = create_token(user, "a busy script").plaintext
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    client, method, url = Client(), ROUTES[walked.name].primary, url_of(walked, owned)
    for _ in range(2):
        assert call(client, "GET", reverse("api:system_info"), **bearer).status_code == 200
    before = snapshot(user)
    response = call(client, method, url, **bearer)
    assert response.status_code == 429, f"{method} {url}: {response.status_code}"
    body = response.json()
    assert body["error"] == "rate_limit_exceeded" and body["reason"] == "api_rate" and body["retry_after"] >= 1
    assert "faster than this server allows" in body["message"]
    assert int(response["Retry-After"]) == body["retry_after"]
    assert snapshot(user) == before
    assert Task.objects.filter(owner=user).count() == 2


def test_the_limit_is_per_person(user, other_user, settings):
    settings.API_RATE = "2/m"
    mine, theirs = (create_token(person, "script").plaintext for person in (user, other_user))
    client = Client()
    codes = [
        call(client, "GET", reverse("api:task_list"), HTTP_AUTHORIZATION=f"Bearer {mine}").status_code for _ in range(3)
    ]
    assert codes == [200, 200, 429]
    assert call(client, "GET", reverse("api:task_list"), HTTP_AUTHORIZATION=f"Bearer {theirs}").status_code == 200


def test_a_session_counts_too_but_not_for_the_images_its_pages_show(auth_client, user, owned, settings):  # noqa: F811
    settings.API_RATE = "2/m"
    image: Image = owned["image"]
    for _ in range(5):  # a gallery page's thumbnails
        assert auth_client.get(reverse("api:image_thumbnail", args=[image.pk])).status_code == 200
    codes = [auth_client.get(reverse("api:task_list")).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_a_token_counts_for_image_files(user, owned, settings):  # noqa: F811
    settings.API_RATE = "2/m"
    token = create_token(user, "downloader").plaintext
    url = reverse("api:image_file", args=[owned["image"].pk])
    codes = [Client().get(url, HTTP_AUTHORIZATION=f"Bearer {token}").status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_system_info_reports_the_api_rate(user, settings):
    settings.API_RATE = "5/m"
    token = create_token(user, "script").plaintext
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    client.get(reverse("api:task_list"))
    rate = client.get(reverse("api:system_info")).json()["limits"]["api_rate"]
    assert rate["rate"] == "5/m" and rate["used"] == 2
