"""The OpenAPI document is checked against the running app: schemathesis generates requests
from it (valid and invalid) and every answer must be documented, match its schema, and
never be a server error."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from django.test import Client
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from generator.api.openapi import document
from generator.scheduler.inline import run_task
from prompts import helper
from sharing.links import create_link
from sharing.publishing import publish

from .factories import TaskFactory, UserFactory

schema = schemathesis.openapi.from_dict(document())
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_the_document_is_served_publicly(client, db):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.json()["openapi"].startswith("3.")
    assert "/api/v1/generate" in response.json()["paths"]


def test_every_api_route_is_documented():
    from django.urls import get_resolver

    documented = set(document()["paths"])
    api = next(p for p in get_resolver().url_patterns if str(p.pattern) == "api/v1/")
    routes = {
        "/api/v1/"
        + str(p.pattern)
        .replace("<uuid:", "{")
        .replace("<int:", "{")
        .replace("<str:", "{")
        .replace("<path:", "{")
        .replace(">", "}")
        for p in api.url_patterns
    }
    assert routes - {"/api/v1/openapi.json"} == documented


@pytest.fixture
def wsgi_app():
    """The real WSGI app, minus the per-request connection closing that would end the
    test's transaction (Django's test client does the same)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield get_wsgi_application()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def signed_in_headers(db, settings, monkeypatch):
    # "Surprise me" (POST /api/v1/variants with rewrites): a stand-in for the LLM that answers, so
    # the contract covers the made set (201) and its refusals (429); the helper's own 503 is
    # tests/test_variants.py's, as a 5xx is what this contract test refuses.
    monkeypatch.setattr(
        helper,
        "rewrites",
        lambda prompt, count: helper.Rewrites(prompt, [f"{prompt}, take {n}" for n in range(1, count + 1)]),
    )
    settings.GENERATE_RATE = "10000/m"
    settings.MAX_QUEUED_TASKS_PER_USER = 10000
    settings.SHARING = "public"  # every sharing endpoint exists, share links too
    user = UserFactory()
    task = TaskFactory(owner=user)
    run_task(str(task.pk))
    # Something on Explore and in the share-link list, so their answers are checked with rows.
    images = list(task.images.all())
    publish(images[0], title="harbour")
    create_link(user, images, title="album", expires_in_days=7)
    client = Client()
    client.force_login(user)
    client.get("/")
    session, csrf = client.cookies["sessionid"].value, client.cookies["csrftoken"].value
    return {"cookies": {"sessionid": session, "csrftoken": csrf}, "headers": {"X-CSRFToken": csrf}}


@schema.parametrize()
@hypothesis_settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_its_documented_contract(case, signed_in_headers, wsgi_app):
    response = case.call(app=wsgi_app, **signed_in_headers)
    case.validate_response(response, checks=CHECKS)
