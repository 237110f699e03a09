"""/metrics: Prometheus' text format, read from the database, for staff and metrics tokens only.

The mixed run is made by the real code (the offline sketch provider and the scripted one, run
to their end by the scheduler's inline runner; one task submitted through /api/v1), and every
figure scraped is compared with the rows, counted here in Python.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.test.utils import CaptureQueriesContext
from prometheus_client.parser import text_string_to_metric_families

from accounts.models import ApiToken, Scope
from accounts.tokens import create_token, revoke_token
from generator.models import Image, Task
from generator.ops import metrics as metrics_module
from generator.providers import PermanentProviderError, TransientProviderError
from generator.scheduler.inline import run_task
from usage.models import QuotaRefusal

from .conftest import client_for
from .factories import TaskFactory, UserFactory, claimed

METRICS = "/metrics"


@pytest.fixture(autouse=True)
def uncached_metrics(settings):
    """Each scrape computed afresh (the cache has its own test); the file cache outlives tests."""
    settings.METRICS_CACHE_SECONDS = 0
    cache.delete(metrics_module.CACHE_KEY)
    yield
    cache.delete(metrics_module.CACHE_KEY)


@pytest.fixture
def staff(db):
    return UserFactory(is_staff=True)


@pytest.fixture
def metrics_token(staff) -> str:
    return create_token(staff, "prometheus", scopes=frozenset({Scope.METRICS})).plaintext


def bearer(plaintext: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {plaintext}"}


def scrape(client: Client, **headers) -> dict:
    """name -> {labels as a sorted tuple of pairs -> value}, for every sample of the answer."""
    response = client.get(METRICS, **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    found: dict = defaultdict(dict)
    for family in text_string_to_metric_families(response.content.decode()):
        assert family.name.startswith("atelier_") and family.documentation
        for sample in family.samples:
            found[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
    return found


def nonzero(samples: dict) -> dict:
    return {labels: value for labels, value in samples.items() if value}


# --- the figures ---------------------------------------------------------------------------


def mixed_run(user, scripted, settings, django_capture_on_commit_callbacks) -> None:
    """Tasks on two providers, each run by the real scheduler code, ending every way they can."""
    settings.PROVIDER_MAX_ATTEMPTS = 2
    busy = TransientProviderError("provider_unavailable", "The provider is not answering.")
    refused = PermanentProviderError("content_rejected", "The provider rejected this prompt.")
    # Scripted, in the order run below: completed after one retry; failed at once; failed
    # after two tries; completed at once.
    scripted.script = [busy, None, refused, busy, busy, None]
    for _ in range(4):
        run_task(str(TaskFactory(owner=user, provider="scripted", model="fixed").pk))
    # Offline sketches: two completed (one of them submitted through /api/v1), one waiting,
    # one generating, one canceled.
    run_task(str(TaskFactory(owner=user, num_images=2).pk))
    api_token = create_token(user, "script").plaintext
    with django_capture_on_commit_callbacks(execute=False):
        submitted = Client().post(
            "/api/v1/generate",
            json.dumps({"prompt": "a harbour at dusk", "provider": "offline", "model": "sketch-v1"}),
            content_type="application/json",
            **bearer(api_token),
        )
    assert submitted.status_code == 201, submitted.content
    run_task(submitted.json()["task_id"])
    TaskFactory(owner=user, source=Task.Source.OPENAI)
    claimed(TaskFactory(owner=user))
    TaskFactory(owner=user, status=Task.Status.CANCELED)
    # Spread the completed ones over the histogram's buckets.
    for task, seconds in zip(Task.objects.filter(status=Task.Status.COMPLETED), (0.4, 7, 45, 700), strict=True):
        Task.objects.filter(pk=task.pk).update(finished_at=task.started_at + timedelta(seconds=seconds))
    # Prices as the usage app would record them (not written on this branch yet).
    completed = Task.objects.filter(status=Task.Status.COMPLETED)
    completed.filter(provider="scripted").update(cost=Decimal("0.0400"), cost_currency="USD")
    completed.filter(provider="offline").update(cost=Decimal("0.1400"), cost_currency="CNY")
    QuotaRefusal.objects.create(owner=user, kind=QuotaRefusal.Kind.IMAGES_PER_DAY)
    QuotaRefusal.objects.create(owner=user, kind=QuotaRefusal.Kind.IMAGES_PER_DAY)
    QuotaRefusal.objects.create(owner=user, kind=QuotaRefusal.Kind.SPEND_PER_MONTH)


def test_a_scrape_after_a_mixed_run_matches_the_database(
    user, staff, metrics_token, scripted, settings, django_capture_on_commit_callbacks
):
    mixed_run(user, scripted, settings, django_capture_on_commit_callbacks)
    found = scrape(Client(), **bearer(metrics_token))
    tasks = list(Task.objects.all())
    statuses = Counter(task.status for task in tasks)
    assert statuses == {"completed": 4, "failed": 2, "pending": 1, "processing": 1, "canceled": 1}
    assert {task.provider for task in tasks} == {"offline", "scripted"}

    # Tasks by provider and status; every status of every provider is there, at 0 if need be.
    by_status = Counter((task.provider, task.status) for task in tasks)
    assert nonzero(found["atelier_tasks"]) == {
        (("provider", provider), ("status", status)): count for (provider, status), count in by_status.items()
    }
    assert len(found["atelier_tasks"]) >= 2 * len(Task.Status.values)
    # Completions, failures by error code, retries, sources.
    assert nonzero(found["atelier_tasks_completed_total"]) == {
        (("provider", "offline"),): 2,
        (("provider", "scripted"),): 2,
    }
    failures = Counter((task.provider, task.error_code) for task in tasks if task.status == "failed")
    assert failures == {("scripted", "content_rejected"): 1, ("scripted", "provider_unavailable"): 1}
    assert found["atelier_tasks_failed_total"] == {
        (("error_code", code), ("provider", provider)): count for (provider, code), count in failures.items()
    }
    retries = Counter()
    for task in tasks:
        retries[task.provider] += max(task.attempts - 1, 0)
    assert retries == {"scripted": 2, "offline": 0}
    assert found["atelier_task_retries_total"][(("provider", "scripted"),)] == 2
    assert found["atelier_task_retries_total"][(("provider", "offline"),)] == 0
    sources = Counter(task.source for task in tasks)
    assert sources == {"web": 7, "api": 1, "openai": 1}
    assert nonzero(found["atelier_tasks_created_total"]) == {(("source", s),): n for s, n in sources.items()}

    # The generation-time histogram, bucket by bucket.
    durations = defaultdict(list)
    for task in tasks:
        if task.status == "completed":
            durations[task.provider].append((task.finished_at - task.started_at).total_seconds())
    for provider, seconds in durations.items():
        label = (("provider", provider),)
        for bound in metrics_module.DURATION_BUCKETS:
            key = (("le", str(float(bound))), ("provider", provider))
            assert found["atelier_generation_duration_seconds_bucket"][key] == sum(s <= bound for s in seconds)
        assert found["atelier_generation_duration_seconds_bucket"][(("le", "+Inf"), ("provider", provider))] == len(
            seconds
        )
        assert found["atelier_generation_duration_seconds_count"][label] == len(seconds)
        assert found["atelier_generation_duration_seconds_sum"][label] == pytest.approx(sum(seconds), abs=1e-3)

    # Queue and in flight: what the scheduler counts.
    waiting = Counter(task.provider for task in tasks if task.status in ("pending", "retrying"))
    flying = Counter(task.provider for task in tasks if task.status == "processing")
    assert nonzero(found["atelier_queue_length"]) == {(("provider", p),): n for p, n in waiting.items()} != {}
    assert nonzero(found["atelier_tasks_in_flight"]) == {(("provider", p),): n for p, n in flying.items()} != {}

    # Images and bytes: the rows, and the files they name really have that many bytes.
    images = list(Image.objects.all())
    assert len(images) == 5  # 2 + 1 offline, 2 scripted (one each)
    assert found["atelier_images_stored"][()] == len(images)
    assert found["atelier_images_stored_bytes"][()] == sum(image.bytes for image in images)
    assert sum(os.path.getsize(image.file.path) for image in images) == sum(image.bytes for image in images)

    # Spend by provider, model and currency.
    spend = defaultdict(Decimal)
    for task in tasks:
        if task.cost is not None:
            spend[task.provider, task.model, task.cost_currency] += task.cost
    assert spend == {("scripted", "fixed", "USD"): Decimal("0.08"), ("offline", "sketch-v1", "CNY"): Decimal("0.28")}
    assert found["atelier_spend_total"] == {
        (("currency", currency), ("model", model), ("provider", provider)): pytest.approx(float(total))
        for (provider, model, currency), total in spend.items()
    }

    # Quota refusals by kind, every kind present.
    refusals = Counter(QuotaRefusal.objects.values_list("kind", flat=True))
    assert found["atelier_quota_refusals_total"] == {
        (("kind", kind),): refusals[kind] for kind in QuotaRefusal.Kind.values
    }
    # Working tokens by scope: the API token used once, and the metrics token used just now.
    assert found["atelier_api_tokens"] == {(("scope", "api"),): 1, (("scope", "metrics"),): 1}
    assert found["atelier_api_tokens_used_recently"] == {(("scope", "api"),): 1, (("scope", "metrics"),): 1}


def test_providers_with_no_tasks_have_their_series_at_zero(staff):
    found = scrape(client_for(staff))
    offline = (("provider", "offline"),)
    assert found["atelier_tasks_completed_total"][offline] == 0
    assert found["atelier_queue_length"][offline] == 0
    assert found["atelier_generation_duration_seconds_count"][offline] == 0
    assert found["atelier_tasks_failed_total"] == {} and found["atelier_spend_total"] == {}
    assert found["atelier_images_stored"][()] == 0


def test_a_scrape_costs_the_same_queries_for_10_or_100_tasks(staff):
    client = client_for(staff)  # a session: a token's last-used stamp is written once a minute

    def queries_for_a_scrape() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(METRICS).status_code == 200
        return len(captured)

    owner = UserFactory()
    TaskFactory.bulk_create_batch(10, owner=owner, images_each=1, status=Task.Status.COMPLETED)
    with_ten = queries_for_a_scrape()
    for provider, status in [("offline", "failed"), ("scripted", "pending"), ("other", "processing")]:
        TaskFactory.bulk_create_batch(30, owner=owner, images_each=1, status=status, provider=provider)
    assert Task.objects.count() == 100
    assert queries_for_a_scrape() == with_ten
    # One per family at most (9 grouped queries for 15 families), and the signed-in user.
    assert with_ten == 9 + 1


def test_the_answer_is_kept_for_metrics_cache_seconds(staff, settings):
    settings.METRICS_CACHE_SECONDS = 60
    client = client_for(staff)
    first = scrape(client)
    TaskFactory(owner=staff)
    with CaptureQueriesContext(connection) as captured:
        assert scrape(client) == first  # the new task is not seen yet
    assert not any("generator_task" in query["sql"] for query in captured)
    cache.delete(metrics_module.CACHE_KEY)
    assert sum(scrape(client)["atelier_tasks"].values()) == 1


# --- who may read it ---------------------------------------------------------------------------


def test_anonymous_is_a_401_without_touching_the_database(db):
    with CaptureQueriesContext(connection) as captured:
        response = Client().get(METRICS)
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Bearer")
    assert "metrics token" in response.content.decode()
    assert len(captured) == 0


def test_a_signed_in_person_who_is_not_staff_is_a_403(user):
    response = client_for(user).get(METRICS)
    assert response.status_code == 403 and b"staff" in response.content


def test_a_staff_session_reads_the_metrics(staff):
    assert "atelier_tasks" in scrape(client_for(staff))


@pytest.mark.parametrize("sent", ["", "atl_" + "x" * 43, "not a token"])
def test_a_bad_token_is_a_401_even_beside_a_staff_session(staff, sent):
    response = client_for(staff).get(METRICS, HTTP_AUTHORIZATION=f"Bearer {sent}")
    assert response.status_code == 401


def test_an_api_token_without_the_metrics_scope_is_a_403(staff):
    api_token = create_token(staff, "script").plaintext
    response = Client().get(METRICS, **bearer(api_token))
    assert response.status_code == 403 and b"metrics token" in response.content


def test_a_metrics_token_stops_working_when_revoked_or_its_owner_is_no_longer_staff(staff, metrics_token):
    assert Client().get(METRICS, **bearer(metrics_token)).status_code == 200
    staff.is_staff = False
    staff.save()
    assert Client().get(METRICS, **bearer(metrics_token)).status_code == 403
    staff.is_staff = True
    staff.save()
    revoke_token(ApiToken.objects.get())
    assert Client().get(METRICS, **bearer(metrics_token)).status_code == 401


def test_only_get_and_head(staff, metrics_token):
    assert Client().head(METRICS, **bearer(metrics_token)).status_code == 200
    assert Client().post(METRICS, **bearer(metrics_token)).status_code == 405


def test_scrapes_are_not_counted_against_the_api_rate(staff, metrics_token, settings):
    settings.API_RATE = "2/m"
    for _ in range(5):
        assert Client().get(METRICS, **bearer(metrics_token)).status_code == 200


def test_a_metrics_token_cannot_use_the_api(staff, metrics_token):
    for path in ("/api/v1/tasks", "/api/v1/models"):
        response = Client().get(path, **bearer(metrics_token))
        assert response.status_code == 403 and response.json()["error"] == "token_scope"
        assert "/metrics only" in response.json()["message"]
    submitted = Client().post(
        "/api/v1/generate", json.dumps({"prompt": "a fox"}), content_type="application/json", **bearer(metrics_token)
    )
    assert submitted.status_code == 403 and not Task.objects.exists()
    # The same person's API token works there.
    api_token = create_token(staff, "script").plaintext
    assert Client().get("/api/v1/tasks", **bearer(api_token)).status_code == 200


def test_prometheus_scrapes_over_real_http(live_server, transactional_db):
    staff = UserFactory(is_staff=True)
    token = create_token(staff, "prometheus", scopes=frozenset({Scope.METRICS})).plaintext
    response = requests.get(live_server.url + METRICS, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert response.status_code == 200
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {"atelier_tasks", "atelier_generation_duration_seconds", "atelier_spend"} <= names
    assert requests.get(live_server.url + METRICS, timeout=30).status_code == 401


# --- making a metrics token ---------------------------------------------------------------------


def test_staff_make_a_metrics_token_on_the_account_page(staff):
    client = client_for(staff)
    assert b'name="use"' in client.get("/accounts/").content
    created = client.post("/accounts/tokens/", {"name": "prometheus", "use": "metrics"})
    assert created.status_code == 302
    assert ApiToken.objects.get().scopes == ["metrics"]
    page = client.get("/accounts/").content.decode()
    plaintext = page.split('id="new-token" readonly value="')[1].split('"')[0]
    assert Client().get(METRICS, **bearer(plaintext)).status_code == 200
    row = page.split(f'id="token-{ApiToken.objects.get().pk}"')[1].split("</tr>")[0]
    assert "<td>Metrics</td>" in row  # the list says what the token is for
    assert client.post("/accounts/tokens/", {"name": "script", "use": "api"}).status_code == 302
    assert ApiToken.objects.get(name="script").scopes == ["api"]


def test_people_who_are_not_staff_cannot_make_one(user):
    client = client_for(user)
    assert b'name="use"' not in client.get("/accounts/").content
    assert client.post("/accounts/tokens/", {"name": "sneaky", "use": "metrics"}).status_code == 302
    assert ApiToken.objects.get().scopes == ["api"]  # the field is ignored: an API token
    with pytest.raises(ValueError):
        create_token(user, "sneaky", scopes=frozenset({Scope.METRICS}))


def test_an_unknown_use_is_a_form_error(staff):
    response = client_for(staff).post("/accounts/tokens/", {"name": "x", "use": "admin"})
    assert response.status_code == 400 and not ApiToken.objects.exists()


def test_tokens_made_without_a_scope_use_the_api(user):
    assert create_token(user, "script").token.scopes == ["api"]


def test_tokens_made_before_scopes_existed_keep_using_the_api(transactional_db):
    before, executor = [("accounts", "0003_apitoken_expires_at")], MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old = executor.loader.project_state(before).apps
        owner = old.get_model("auth", "User").objects.create(username="early")
        old.get_model("accounts", "ApiToken").objects.create(
            owner=owner, name="old", prefix="atl_abcd", digest="0" * 64
        )
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    token = ApiToken.objects.get()
    assert token.scopes == ["api"] and token.has_scope(Scope.API) and not token.has_scope(Scope.METRICS)


def test_a_database_that_cannot_be_read_is_a_503_not_a_500(staff, monkeypatch):
    def broken() -> None:
        raise OperationalError("database is locked")

    monkeypatch.setattr(metrics_module, "in_flight", broken)
    response = client_for(staff).get(METRICS)
    assert response.status_code == 503 and b"database" in response.content


def test_the_command_prints_a_metrics_token_for_staff(staff, capsys):
    call_command("create_metrics_token", staff.username, "prometheus")
    plaintext = capsys.readouterr().out.strip()
    assert ApiToken.objects.get().scopes == ["metrics"]
    assert Client().get(METRICS, **bearer(plaintext)).status_code == 200


@pytest.mark.parametrize(
    ("username", "name", "message"),
    [("nobody", "prometheus", "no account"), ("person", "prometheus", "not an active staff"), ("boss", " ", "name")],
)
def test_the_command_refuses_clearly(db, username, name, message):
    UserFactory(username="person")
    UserFactory(username="boss", is_staff=True)
    with pytest.raises(CommandError, match=message):
        call_command("create_metrics_token", username, name)
    assert not ApiToken.objects.exists()
