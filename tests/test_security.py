"""Security defaults a person relies on without seeing them."""

from __future__ import annotations

import logging

from django.urls import reverse

from .factories import TaskFactory


def test_pages_carry_a_strict_content_security_policy(auth_client):
    response = auth_client.get(reverse("generator:create"))
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"


def test_pages_have_no_inline_scripts_or_styles(auth_client, completed_task):
    for name in ("generator:create", "generator:gallery", "generator:history"):
        html = auth_client.get(reverse(name)).content.decode()
        assert "<script>" not in html and "<style" not in html and " style=" not in html


def test_prompts_are_not_logged_unless_asked(auth_client, caplog, settings):
    body = {"prompt": "my secret birthday surprise", "width": 256, "height": 256}
    with caplog.at_level(logging.INFO, logger="generator"):
        auth_client.post("/api/v1/generate", body, content_type="application/json")
    assert "task" in caplog.text and "birthday" not in caplog.text
    settings.LOG_PROMPTS = True
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="generator"):
        auth_client.post("/api/v1/generate", body, content_type="application/json")
    assert "birthday" in caplog.text


def test_provider_keys_never_reach_the_logs(auth_client, caplog, configure_provider, httpserver, user):
    from generator.scheduler.inline import run_task

    configure_provider("openai", API_KEY="sk-log-canary", BASE_URL=httpserver.url_for("/v1"))
    httpserver.expect_request("/v1/images/generations").respond_with_json(
        {"error": {"message": "Incorrect API key provided: sk-log-c***", "code": "invalid_api_key"}}, status=401
    )
    task = TaskFactory(owner=user, provider="openai", model="gpt-image-1", prompt="a kite", width=1024, height=1024)
    with caplog.at_level(logging.DEBUG):
        run_task(str(task.pk))
    task.refresh_from_db()
    assert task.error_code == "authentication_failed"
    assert "sk-log-canary" not in caplog.text and "sk-log-canary" not in task.error_message
