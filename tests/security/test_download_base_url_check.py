"""`manage.py check` warns when a cloud provider's base URL is plain http (security review,
hardening notes): its key would travel in clear text. Self-hosted providers are exempt."""

from __future__ import annotations

import io

import pytest
from django.core import checks
from django.core.management import call_command

CLOUD = {
    "openai": "OPENAI_",
    "ark": "ARK_",
    "siliconflow": "SILICONFLOW_",
    "dashscope": "DASHSCOPE_",
    "volcengine": "VOLCENGINE_",
}
KEYS = {"volcengine": {"ACCESS_KEY": "ak", "SECRET_KEY": "sk"}}


def plain_http_warnings() -> list[checks.CheckMessage]:
    return [message for message in checks.run_checks() if message.id == "atelier.W001"]


@pytest.mark.parametrize("name", list(CLOUD))
def test_a_cloud_provider_with_a_plain_http_base_url_is_named_with_its_variable(configure_provider, name):
    configure_provider(name, BASE_URL="http://gateway.example/v1", **KEYS.get(name, {"API_KEY": "k"}))
    [warning] = plain_http_warnings()
    assert warning.level == checks.WARNING and warning.obj == name
    assert f"{CLOUD[name]}BASE_URL is a plain-http address" in warning.msg
    assert "clear text" in warning.msg and f"{CLOUD[name]}SELF_HOSTED=true" in warning.hint
    assert "gateway.example" not in warning.msg  # the address may carry credentials


@pytest.mark.parametrize("base_url", ["HTTP://api.openai.com/v1", "http://127.0.0.1:8080/v1"])
def test_any_spelling_or_host_of_plain_http_is_warned_about(configure_provider, base_url):
    configure_provider("openai", API_KEY="k", BASE_URL=base_url)
    assert [warning.obj for warning in plain_http_warnings()] == ["openai"]


def test_https_base_urls_and_the_defaults_give_no_warning(configure_provider):
    assert plain_http_warnings() == []
    for name in CLOUD:
        configure_provider(name, **KEYS.get(name, {"API_KEY": "k"}))
    configure_provider("openai", BASE_URL="https://gateway.example/v1")
    assert plain_http_warnings() == []


def test_a_provider_marked_self_hosted_may_use_plain_http(configure_provider):
    configure_provider("siliconflow", API_KEY="k", BASE_URL="http://gpu-box.local:8000/v1", SELF_HOSTED=True)
    assert plain_http_warnings() == []


def test_automatic1111_is_self_hosted_by_nature(configure_provider):
    configure_provider("automatic1111", BASE_URL="http://gpu-box.local:7860")
    assert plain_http_warnings() == []


def test_manage_py_check_prints_the_warning(configure_provider):
    configure_provider("openai", API_KEY="k", BASE_URL="http://api.openai.com/v1")
    out = io.StringIO()
    call_command("check", stdout=out, stderr=out)
    assert "atelier.W001" in out.getvalue() and "OPENAI_BASE_URL" in out.getvalue()
