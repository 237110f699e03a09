"""`manage.py check` warns when a cloud provider's base URL is plain http (security review,
hardening notes): its key would travel in clear text. Self-hosted providers are exempt.

It also refuses provider limits it cannot read (<PREFIX>RATE, <PREFIX>FALLBACK) and warns about
a fallback that leads nowhere."""

from __future__ import annotations

import io

import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError

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


# --- provider limits ------------------------------------------------------------------------


def limit_messages(check_id: str) -> list[checks.CheckMessage]:
    return [message for message in checks.run_checks() if message.id == check_id]


def with_limits(settings, name: str, **values) -> None:
    limits = {"CONCURRENCY": 2, "RATE": "", "FALLBACK": "", **values}
    settings.PROVIDER_LIMITS = {**settings.PROVIDER_LIMITS, name: limits}


def test_the_default_limits_give_no_message(db):
    assert limit_messages("atelier.E004") == [] and limit_messages("atelier.W002") == []


@pytest.mark.parametrize("rate", ["ten per minute", "10", "0/m", "10/fortnight", "/m"])
def test_an_unreadable_rate_is_an_error_naming_its_variable(settings, rate):
    with_limits(settings, "dashscope", RATE=rate)
    [error] = limit_messages("atelier.E004")
    assert error.level == checks.ERROR and error.obj == "dashscope"
    assert error.msg.startswith("DASHSCOPE_RATE cannot be read:") and repr(rate) in error.msg
    assert "10/m" in error.hint


@pytest.mark.parametrize("rate", ["10/m", "5/10s", " 100 / h ", "1/day"])
def test_readable_rates_pass(settings, rate):
    with_limits(settings, "dashscope", RATE=rate)
    assert limit_messages("atelier.E004") == []


@pytest.mark.parametrize("fallback", ["offline", "offline:", ":sketch-v1", "offline sketch-v1"])
def test_an_unreadable_fallback_is_an_error_naming_its_variable(settings, fallback):
    with_limits(settings, "openai", FALLBACK=fallback)
    [error] = limit_messages("atelier.E004")
    assert error.msg.startswith("OPENAI_FALLBACK cannot be read:") and "provider:model" in error.hint
    assert limit_messages("atelier.W002") == []


def test_both_variables_of_one_provider_are_reported(settings):
    with_limits(settings, "offline", RATE="often", FALLBACK="nowhere")
    assert sorted(error.msg.split(" ")[0] for error in limit_messages("atelier.E004")) == [
        "OFFLINE_FALLBACK",
        "OFFLINE_RATE",
    ]


def test_a_fallback_to_a_provider_that_is_not_enabled_is_warned_about(settings):
    with_limits(settings, "offline", FALLBACK="openai:dall-e-3")
    [warning] = limit_messages("atelier.W002")
    assert warning.level == checks.WARNING and warning.obj == "offline"
    assert warning.msg == (
        "OFFLINE_FALLBACK names the openai provider, which is not enabled: tasks on offline will not fail over."
    )
    assert limit_messages("atelier.E004") == []


def test_a_fallback_to_an_unknown_provider_is_warned_about(settings):
    with_limits(settings, "offline", FALLBACK="midjourney:v6")
    [warning] = limit_messages("atelier.W002")
    assert "midjourney, which is not a provider Atelier knows" in warning.msg and "dashscope" in warning.hint


def test_a_fallback_to_a_model_the_provider_does_not_offer_is_warned_about(configure_provider, settings):
    configure_provider("openai", API_KEY="k")
    with_limits(settings, "openai", FALLBACK="offline:sketch-v9")
    [warning] = limit_messages("atelier.W002")
    assert warning.msg.startswith("OPENAI_FALLBACK names the model sketch-v9, which offline does not offer")
    assert "sketch-v1" in warning.hint


def test_a_fallback_to_an_enabled_providers_model_passes(configure_provider, settings):
    configure_provider("openai", API_KEY="k")
    with_limits(settings, "openai", FALLBACK="offline:sketch-v1")
    assert limit_messages("atelier.W002") == [] and limit_messages("atelier.E004") == []


def test_manage_py_check_refuses_an_unreadable_rate(settings):
    with_limits(settings, "siliconflow", RATE="lots")
    out = io.StringIO()
    with pytest.raises(SystemCheckError, match="SILICONFLOW_RATE"):
        call_command("check", stdout=out, stderr=out)


def test_the_old_active_task_cap_variable_is_named_as_no_longer_read(monkeypatch, db):
    monkeypatch.setenv("MAX_ACTIVE_TASKS_PER_USER", "4")
    warnings = [message for message in checks.run_checks() if message.id == "atelier.W003"]
    assert [message.msg for message in warnings] == ["MAX_ACTIVE_TASKS_PER_USER is set but no longer read."]
    monkeypatch.delenv("MAX_ACTIVE_TASKS_PER_USER")
    assert not [message for message in checks.run_checks() if message.id == "atelier.W003"]
