"""Per-person limits on generating: a cap on waiting tasks and a request rate. Both 429."""

from __future__ import annotations

import concurrent.futures

import pytest
import requests
from django.core import checks
from django.test import Client
from django.urls import reverse

from generator.models import Task

from .factories import PASSWORD, TaskFactory, UserFactory

GENERATE = "/api/v1/generate"
# Every rate window here stays open for the whole test (see the fixture in conftest.py).
pytestmark = pytest.mark.usefixtures("ratelimit_clock")


def generate(client: Client, **extra):
    return client.post(
        GENERATE, {"prompt": "a kite", "width": 256, "height": 256}, content_type="application/json", **extra
    )


def test_the_queued_task_cap_answers_429_and_creates_nothing(auth_client, user, settings):
    settings.MAX_QUEUED_TASKS_PER_USER = 2
    TaskFactory(owner=user)
    TaskFactory(owner=user, status=Task.Status.RETRYING)
    TaskFactory(owner=user, status=Task.Status.PROCESSING)  # generating: no longer waiting
    TaskFactory(owner=user, status=Task.Status.COMPLETED)  # finished tasks do not count
    response = generate(auth_client)
    assert response.status_code == 429
    assert response["Retry-After"] == "5"
    body = response.json()
    assert body["error"] == "rate_limit_exceeded" and body["reason"] == "too_many_queued_tasks"
    assert body["retry_after"] == 5
    assert "2 tasks waiting to run" in body["message"]
    assert Task.objects.filter(owner=user).count() == 4


def test_tasks_already_generating_do_not_count_against_the_cap(auth_client, user, settings):
    settings.MAX_QUEUED_TASKS_PER_USER = 1
    TaskFactory(owner=user, status=Task.Status.PROCESSING)
    TaskFactory(owner=user, status=Task.Status.PROCESSING, provider_job={"state": {"id": "job-1"}})
    assert generate(auth_client).status_code == 201
    refused = generate(auth_client)
    assert refused.status_code == 429 and refused.json()["reason"] == "too_many_queued_tasks"


def test_the_cap_is_per_person(auth_client, other_client, user, settings):
    settings.MAX_QUEUED_TASKS_PER_USER = 1
    TaskFactory(owner=user)
    assert generate(auth_client).status_code == 429
    assert generate(other_client).status_code == 201


def test_the_cap_shows_in_place_on_the_page(auth_client, user, settings):
    settings.MAX_QUEUED_TASKS_PER_USER = 1
    TaskFactory(owner=user)
    form = {"prompt": "a kite", "model": "offline:sketch-v1", "size": "512x512", "num_images": "1"}
    htmx = auth_client.post(reverse("generator:create"), form, HTTP_HX_REQUEST="true")
    assert htmx.status_code == 429 and htmx["HX-Retarget"] == "#form-problem"
    assert "Wait for one to start" in htmx.content.decode()
    page = auth_client.post(reverse("generator:create"), form)
    assert page.status_code == 429 and page["Retry-After"] == "5"
    html = page.content.decode()
    assert "Wait for one to start" in html and "a kite" in html  # the typed prompt is kept


# The wait is what is left of the person's rate window: 1 second at its very end ("second"),
# more anywhere else ("seconds"). The clock stands still at the chosen point of the window.
@pytest.mark.parametrize(("seconds_left", "unit"), [(30, "seconds"), (1, "second")], ids=["mid-window", "last-second"])
def test_the_generate_rate_is_limited_per_person(
    auth_client, other_client, user, settings, ratelimit_clock, seconds_left, unit
):
    settings.GENERATE_RATE = "3/m"
    settings.MAX_QUEUED_TASKS_PER_USER = 100
    ratelimit_clock.stop_before_window_end(str(user.pk), 60, seconds_left)
    assert [generate(auth_client).status_code for _ in range(3)] == [201, 201, 201]
    refused = generate(auth_client)
    assert refused.status_code == 429
    body = refused.json()
    assert body["error"] == "rate_limit_exceeded" and body["reason"] == "generate_rate"
    assert 1 <= body["retry_after"] <= 60 and refused["Retry-After"] == str(body["retry_after"])
    assert body["retry_after"] == seconds_left
    assert body["message"].endswith(f" Try again in {seconds_left} {unit}."), body["message"]
    assert Task.objects.count() == 3
    assert generate(other_client).status_code == 201


def test_the_page_and_the_api_share_one_rate(auth_client, settings):
    settings.GENERATE_RATE = "2/m"
    form = {"prompt": "a kite", "model": "offline:sketch-v1", "size": "512x512", "num_images": "1"}
    assert auth_client.post(reverse("generator:create"), form).status_code == 302
    assert generate(auth_client).status_code == 201
    htmx = auth_client.post(reverse("generator:create"), form, HTTP_HX_REQUEST="true")
    assert htmx.status_code == 429 and "faster than this server allows" in htmx.content.decode()


def test_polling_and_pages_are_never_limited(auth_client, user, settings):
    settings.GENERATE_RATE = "1/m"
    task = TaskFactory(owner=user)
    for _ in range(40):
        assert auth_client.get(reverse("generator:task_card", args=[task.pk])).status_code == 200
        assert auth_client.get(f"/api/v1/task/{task.pk}").status_code == 200
    assert auth_client.get(reverse("generator:create")).status_code == 200


def test_sign_in_attempts_are_limited_per_username(client, user, settings):
    settings.LOGIN_RATE_PER_USERNAME = "3/m"
    for _ in range(3):
        assert client.post(reverse("login"), {"username": user.username, "password": "wrong"}).status_code == 200
    refused = client.post(reverse("login"), {"username": user.username, "password": PASSWORD})
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert "Too many sign-in attempts" in refused.content.decode()
    other = UserFactory()
    assert client.post(reverse("login"), {"username": other.username, "password": PASSWORD}).status_code == 302


def test_sign_in_attempts_are_limited_per_address(client, db, settings):
    settings.LOGIN_RATE_PER_IP = "4/m"
    codes = [client.post(reverse("login"), {"username": f"guess{i}", "password": "x"}).status_code for i in range(5)]
    assert codes == [200, 200, 200, 200, 429]


def test_several_web_processes_need_a_shared_rate_limit_cache(settings):
    in_memory = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "ratelimit"}
    settings.CACHES = {**settings.CACHES, "ratelimit": in_memory}
    settings.WEB_CONCURRENCY = 3
    errors = [m for m in checks.run_checks() if m.id == "atelier.E003"]
    assert len(errors) == 1 and "REDIS_URL" in errors[0].hint
    settings.WEB_CONCURRENCY = 1
    assert not [m for m in checks.run_checks() if m.id == "atelier.E003"]
    shared = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:6379/9"}
    settings.CACHES = {**settings.CACHES, "ratelimit": shared}
    settings.WEB_CONCURRENCY = 3
    assert not [m for m in checks.run_checks() if m.id == "atelier.E003"]


def api_session(live_server, user) -> requests.Session:
    """A requests session signed in as `user`, carrying the CSRF token like a JSON client."""
    client = Client()
    client.force_login(user)
    session = requests.Session()
    session.cookies.set("sessionid", client.cookies["sessionid"].value)
    session.get(live_server.url + "/")
    session.headers["X-CSRFToken"] = session.cookies["csrftoken"]
    session.headers["Referer"] = live_server.url + "/"
    return session


def test_concurrent_submissions_stop_exactly_at_the_cap(live_server, transactional_db, settings):
    settings.MAX_QUEUED_TASKS_PER_USER = 4
    settings.GENERATE_RATE = "100/m"
    user = UserFactory()
    session = api_session(live_server, user)
    body = {"prompt": "a kite", "width": 256, "height": 256}

    def submit(_):
        return session.post(live_server.url + GENERATE, json=body, timeout=30).status_code

    from django_q.conf import Conf

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Conf, "SYNC", False)  # queue them; no worker runs, so they stay waiting
        with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
            codes = list(pool.map(submit, range(20)))
    assert sorted(codes) == [201] * 4 + [429] * 16
    assert Task.objects.filter(owner=user).count() == 4
