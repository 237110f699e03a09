"""The API's answers to a script that forgot its token or asks for an address that does not exist:
401 `not_authenticated` for every method (not a CSRF 403), and a JSON 404 for any /api/ path,
with DEBUG on too. A signed-in session still needs the CSRF token on every change."""

from __future__ import annotations

import json
import uuid

import pytest
from django.test import Client

from generator.models import Task

from .factories import ImageFactory, TaskFactory

SOME_ID = uuid.uuid4()
CHANGES = [
    ("post", "/api/v1/generate", {"prompt": "a lantern"}),
    ("delete", f"/api/v1/task/{SOME_ID}", None),
    ("delete", f"/api/v1/history/{SOME_ID}", None),
    ("post", f"/api/v1/images/{SOME_ID}/tags", {"name": "harbour"}),
    ("delete", f"/api/v1/images/{SOME_ID}/tags/harbour", None),
]


def send(client: Client, method: str, path: str, body: dict | None, **extra):
    payload = json.dumps(body) if body is not None else ""
    return getattr(client, method)(path, payload, content_type="application/json", **extra)


@pytest.mark.parametrize(("method", "path", "body"), CHANGES)
def test_a_change_without_credentials_is_a_401_not_a_csrf_403(db, method, path, body):
    response = send(Client(enforce_csrf_checks=True), method, path, body)
    assert response.status_code == 401
    assert response.json() == {"error": "not_authenticated", "message": "Sign in to use the API."}


def test_the_readme_example_without_a_token_is_told_to_sign_in(db):
    # README "JSON API": not signed in → 401 not_authenticated (curl sends no cookie, no CSRF token).
    client = Client(enforce_csrf_checks=True)
    response = client.post("/api/v1/generate", '{"prompt":"x"}', content_type="application/json")
    assert response.status_code == 401 and response.json()["error"] == "not_authenticated"
    assert not Task.objects.exists()


@pytest.mark.parametrize(("method", "path", "body"), CHANGES)
def test_a_signed_in_session_still_needs_the_csrf_token(user, method, path, body):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = send(client, method, path, body)
    assert response.status_code == 403 and response.json()["error"] == "csrf_failed"


def test_a_session_with_the_csrf_token_changes_things(user):
    task = TaskFactory(owner=user)
    ImageFactory(task=task)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get("/")  # the csrftoken cookie
    token = client.cookies["csrftoken"].value
    response = send(client, "delete", f"/api/v1/task/{task.pk}", None, HTTP_X_CSRFTOKEN=token)
    assert response.status_code in (200, 204) and not Task.objects.filter(pk=task.pk).exists()


UNKNOWN = ["/api/v1/task/nope", "/api/v1/no-such-endpoint", "/api/v1/", "/api/", "/api/v2/generate", "/api/v1/models/x"]


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("path", UNKNOWN)
def test_an_unknown_api_path_is_a_json_404(auth_client, settings, debug, path):
    settings.DEBUG = debug  # make dev: Django's technical 404 page is HTML
    response = auth_client.get(path)
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    assert response.json()["error"] == "not_found"


@pytest.mark.parametrize("path", UNKNOWN)
def test_an_unknown_api_path_is_a_json_404_signed_out_and_for_any_method(db, path):
    client = Client(enforce_csrf_checks=True)
    for method in ("get", "post", "delete"):
        response = getattr(client, method)(path)
        assert response.status_code == 404 and response.json()["error"] == "not_found", (method, path)


def test_known_api_paths_are_unchanged(auth_client):
    assert auth_client.get("/api/v1/models").status_code == 200
    assert auth_client.get(f"/api/v1/task/{uuid.uuid4()}").json()["error"] == "not_found"
    assert auth_client.get("/api/v1/openapi.json").status_code == 200
