"""The live catalogue: a model the provider no longer lists is hidden, named and refused at once."""

from __future__ import annotations

import re
import time

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django_q.models import Schedule

from generator import catalogue, jobs
from generator.checks import provider_timeouts_fit_in_a_step
from generator.models import ProviderStatus, Task
from generator.ops.schedules import CATALOGUE_SCHEDULE_FUNC, CATALOGUE_SCHEDULE_NAME, install_schedules
from generator.providers.errors import MESSAGES, TransientProviderError, error_for
from generator.scheduler.inline import run_task

from .factories import TaskFactory, UserFactory

RETIRED = str(MESSAGES["model_retired"])


@pytest.fixture
def retired(scripted, db):
    """The scripted provider's only model, "fixed", no longer listed by the provider."""
    scripted.listing = frozenset({"something-else"})
    catalogue.refresh()
    return scripted


def offered_on_the_create_page(client) -> list[str]:
    """The values of the model select's options, as the page renders them."""
    return re.findall(r'<option value="([^"]+)" data-limits=', client.get("/").content.decode())


def test_a_model_the_provider_no_longer_lists_is_hidden_from_the_create_page_and_the_api(scripted, auth_client):
    assert "scripted:fixed" in offered_on_the_create_page(auth_client)
    scripted.listing = frozenset({"something-else"})
    results = catalogue.refresh()

    assert {result.provider: result.retired for result in results}["scripted"] == ("fixed",)
    assert "scripted:fixed" not in offered_on_the_create_page(auth_client)
    assert any(value.startswith("offline:") for value in offered_on_the_create_page(auth_client))
    api = {p["name"]: [m["id"] for m in p["models"]] for p in auth_client.get("/api/v1/models").json()["providers"]}
    assert api["scripted"] == []
    assert api["offline"]  # the other provider is untouched


def test_a_submission_for_a_retired_model_is_a_form_error_that_says_so(retired, auth_client, user):
    response = auth_client.post(reverse("generator:create"), {"prompt": "a fox", "model": "scripted:fixed"})
    assert response.status_code in (200, 400, 422)
    assert RETIRED in response.content.decode()
    api = auth_client.post(
        "/api/v1/generate",
        {"prompt": "a fox", "provider": "scripted", "model": "fixed"},
        content_type="application/json",
    )
    assert api.status_code == 400
    assert RETIRED in api.content.decode()
    assert not Task.objects.filter(owner=user).exists()


def test_a_queued_task_for_a_retired_model_fails_at_once_without_calling_the_provider(retired, user):
    task = TaskFactory(owner=user, provider="scripted", model="fixed")
    run_task(str(task.pk))
    task.refresh_from_db()
    assert (task.status, task.error_code, task.attempts) == (Task.Status.FAILED, "model_retired", task.attempts)
    assert task.error_message == RETIRED
    assert retired.calls == 0


def test_a_model_listed_again_comes_back(retired, auth_client):
    retired.listing = frozenset({"fixed"})
    catalogue.refresh(["scripted"])
    assert "scripted:fixed" in offered_on_the_create_page(auth_client)


def test_a_provider_that_cannot_list_its_models_retires_nothing(scripted, db):
    scripted.listing = None
    [result] = [r for r in catalogue.refresh() if r.provider == "scripted"]
    assert (result.reachable, result.retired, result.listed) == (True, (), None)
    assert not catalogue.is_retired("scripted", "fixed")


def test_a_failed_check_keeps_the_last_verdict_and_is_recorded(retired, db):
    retired.listing = TransientProviderError("provider_unavailable", MESSAGES["provider_unavailable"])
    [result] = catalogue.refresh(["scripted"])
    assert (result.reachable, result.retired) == (False, ("fixed",))
    status = ProviderStatus.objects.get(provider="scripted")
    assert (status.reachable, status.error_code, status.retired_models) == (False, "provider_unavailable", ["fixed"])
    assert catalogue.is_retired("scripted", "fixed")


def test_readyz_names_the_retired_model_and_stays_ready(retired, client, settings):
    settings.READYZ_TOKEN, settings.READYZ_RATE = "probe-token", "1000/m"
    body = client.get("/readyz", HTTP_AUTHORIZATION="Bearer probe-token").json()
    providers = body["checks"]["providers"]
    assert providers["ok"] is True
    assert providers["providers"]["scripted"]["retired_models"] == ["fixed"]
    assert providers["degraded"] == ["scripted"]


def test_the_admin_overview_names_retired_models_and_failed_checks(retired, client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    retired.listing = error_for("authentication_failed")
    catalogue.refresh(["scripted"])
    problems = client.get(reverse("admin:generator_overview")).context["overview"].problems
    text = "\n".join(problems)
    assert "scripted no longer offers fixed" in text
    assert "scripted failed its last check" in text and "API key" in text


def test_check_providers_reports_each_provider_and_fails_when_a_check_fails(retired, capsys):
    retired.listing = frozenset({"fixed", "other"})
    call_command("check_providers")
    out = capsys.readouterr().out
    assert "scripted: 2 models listed" in out and "offline: reachable" in out

    retired.listing = error_for("authentication_failed")
    with pytest.raises(CommandError) as failed:
        call_command("check_providers", "scripted")
    assert failed.value.returncode == 1
    with pytest.raises(CommandError, match="Not an enabled provider: nope"):
        call_command("check_providers", "nope")


def test_an_hourly_schedule_runs_the_same_check(scripted, db):
    install_schedules()
    schedule = Schedule.objects.get(name=CATALOGUE_SCHEDULE_NAME)
    assert (schedule.func, schedule.schedule_type) == (CATALOGUE_SCHEDULE_FUNC, Schedule.HOURLY)
    scripted.listing = frozenset()
    assert "scripted: 0 models listed, retired: fixed" in jobs.check_providers()
    assert catalogue.is_retired("scripted", "fixed")


@pytest.mark.cluster
def test_a_starting_worker_checks_the_providers_in_the_background(start_qcluster):
    start_qcluster()
    deadline = time.monotonic() + 20
    while not ProviderStatus.objects.filter(provider="offline", reachable=True).exists():
        assert time.monotonic() < deadline, "the worker did not check the providers at start-up"
        time.sleep(0.1)


def test_a_provider_timeout_longer_than_a_step_is_named_by_the_check(configure_provider, settings):
    configure_provider("openai", API_KEY="k")  # 600 s by default, as OpenAI's own client waits
    assert provider_timeouts_fit_in_a_step() == []
    settings.TASK_TIMEOUT = 600
    [warning] = provider_timeouts_fit_in_a_step()
    assert warning.id == "atelier.W004" and warning.obj == "openai"
    assert "TASK_TIMEOUT to at least 670" in warning.hint
