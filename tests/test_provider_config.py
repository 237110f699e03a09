"""Providers are configured from the environment only, offered once complete, and a
half-configured one is named by `manage.py check`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core import checks
from django.urls import reverse

from generator import providers

ROOT = Path(__file__).resolve().parent.parent
REAL_PROVIDERS = ["volcengine", "openai", "ark", "siliconflow", "dashscope", "automatic1111"]
REQUIRED_SETTINGS = {
    "volcengine": {"ACCESS_KEY": "ak", "SECRET_KEY": "sk"},
    "openai": {"API_KEY": "k"},
    "ark": {"API_KEY": "k"},
    "siliconflow": {"API_KEY": "k"},
    "dashscope": {"API_KEY": "k"},
    "automatic1111": {"BASE_URL": "http://gpu-box.local:7860"},
}


def atelier_errors() -> list[checks.CheckMessage]:
    return [message for message in checks.run_checks() if message.id == "atelier.E001"]


def test_env_example_lists_every_variable(settings):
    example = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^# ([A-Z0-9_]+)=", example, flags=re.MULTILINE))
    read_in_settings = set(re.findall(r'env\.\w+\(\s*"([A-Z0-9_]+)"', (ROOT / "config" / "settings.py").read_text()))
    for config in settings.PROVIDER_CONFIG.values():
        read_in_settings |= {config["ENV_PREFIX"] + key for key in config if key not in ("ENV_PREFIX", "SET")}
        read_in_settings |= {config["ENV_PREFIX"] + key for key in ("CONCURRENCY", "RATE", "FALLBACK")}
    read_in_settings |= {"OFFLINE_" + key for key in ("CONCURRENCY", "RATE", "FALLBACK")}
    assert read_in_settings - listed == set()


def test_only_the_offline_sketch_is_offered_by_default(db):
    assert list(providers.enabled_providers()) == ["offline"]
    assert atelier_errors() == []


@pytest.mark.parametrize("name", REAL_PROVIDERS)
def test_a_complete_provider_is_offered_with_its_models(configure_provider, name):
    provider = configure_provider(name, **REQUIRED_SETTINGS[name])
    assert provider is not None and provider.name == name
    assert provider.models(), f"{name} offers no models"
    assert name in providers.enabled_providers()
    assert atelier_errors() == []


@pytest.mark.parametrize("name", REAL_PROVIDERS)
def test_a_half_configured_provider_is_named_by_the_check(configure_provider, settings, name):
    prefix = settings.PROVIDER_CONFIG[name]["ENV_PREFIX"]
    assert configure_provider(name, MODELS=["some-model"]) is None
    errors = atelier_errors()
    assert len(errors) == 1 and errors[0].obj == name
    for key in REQUIRED_SETTINGS[name]:
        assert prefix + key in errors[0].msg
    assert name not in providers.enabled_providers()


def test_the_check_names_only_what_is_missing(configure_provider):
    configure_provider("volcengine", SECRET_KEY="sk")
    [error] = atelier_errors()
    assert "VOLCENGINE_ACCESS_KEY" in error.msg and "VOLCENGINE_SECRET_KEY" not in error.msg


def test_the_offline_sketch_can_be_turned_off(settings, configure_provider):
    configure_provider("siliconflow", API_KEY="k")
    settings.OFFLINE_PROVIDER = False
    assert list(providers.enabled_providers()) == ["siliconflow"]


def test_the_create_page_offers_only_enabled_providers(auth_client, configure_provider):
    html = auth_client.get(reverse("generator:create")).content.decode()
    assert "siliconflow:" not in html
    configure_provider("siliconflow", API_KEY="k")
    html = auth_client.get(reverse("generator:create")).content.decode()
    assert 'value="siliconflow:Kwai-Kolors/Kolors"' in html and 'value="offline:sketch-v1"' in html


def test_the_form_refuses_a_provider_that_is_not_configured(auth_client):
    response = auth_client.post(
        "/api/v1/generate", {"prompt": "a", "provider": "openai", "model": "dall-e-3"}, content_type="application/json"
    )
    assert response.status_code == 400 and "provider" in response.json()["details"]


def test_models_endpoint_lists_enabled_providers_and_limits(auth_client, configure_provider):
    data = auth_client.get("/api/v1/models").json()
    assert [p["name"] for p in data["providers"]] == ["offline"]
    [sketch] = data["providers"][0]["models"]
    assert sketch["id"] == "sketch-v1" and sketch["min_size"] == 64 and sketch["max_size"] == 2048
    assert data["providers"][0]["is_sketch"] is True
    configure_provider("openai", API_KEY="k")
    data = auth_client.get("/api/v1/models").json()
    openai = next(p for p in data["providers"] if p["name"] == "openai")
    assert openai["is_sketch"] is False
    assert [m["id"] for m in openai["models"]] == ["gpt-image-2.6-flare", "gpt-image-2.6-sunburst", "gpt-image-2"]
    assert all("max_images" in m and "sizes" in m for m in openai["models"])


def test_models_endpoint_needs_sign_in(client, db):
    assert client.get("/api/v1/models").status_code == 401


def test_keys_never_reach_pages_or_the_api(auth_client, configure_provider):
    configure_provider("openai", API_KEY="sk-very-secret-key")
    for url in ("/", "/api/v1/models"):
        assert "sk-very-secret-key" not in auth_client.get(url).content.decode()


def test_a_username_without_its_password_is_named_by_the_check(configure_provider):
    configure_provider("automatic1111", BASE_URL="http://gpu-box.local:7860", USERNAME="ada")
    [error] = [m for m in checks.run_checks() if m.id == "atelier.E002"]
    assert "AUTOMATIC1111_USERNAME" in error.msg and "AUTOMATIC1111_PASSWORD" in error.msg


def generate(client, **body):
    return client.post("/api/v1/generate", body, content_type="application/json")


def test_the_form_checks_each_models_own_limits(auth_client, configure_provider):
    configure_provider("siliconflow", API_KEY="k")
    kolors = {"prompt": "a", "provider": "siliconflow", "model": "Kwai-Kolors/Kolors", "width": 1024, "height": 1024}
    assert "scale" in generate(auth_client, **kolors, scale=25).json()["details"]
    assert "steps" in generate(auth_client, **kolors, steps=120).json()["details"]
    assert "width" in generate(auth_client, **{**kolors, "width": 1000}).json()["details"]
    assert generate(auth_client, **kolors, scale=7.5, steps=30, seed=9_000_000_000).status_code == 201


def test_settings_a_model_would_ignore_are_not_recorded(auth_client, configure_provider):
    from generator.models import Task

    configure_provider("openai", API_KEY="k")
    response = generate(
        auth_client,
        prompt="a",
        provider="openai",
        model="gpt-image-2",
        width=1024,
        height=1024,
        negative_prompt="blur",
        seed=5,
        steps=30,
        scale=7,
    )
    assert response.status_code == 201
    task = Task.objects.get(pk=response.json()["task_id"])
    assert (task.negative_prompt, task.seed, task.steps, task.guidance_scale) == ("", None, None, None)
