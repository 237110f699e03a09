"""The polled card of a running task is rendered once for what it shows (generator.views.tasks,
generator.lib.fragments.render_kept): every change to the task shows on the next poll, the
elapsed time, the CSRF field and the page to come back to are the request's own, and another
person's task stays a 404. The task itself is read with SQL compiled once
(generator.lib.prepared), which must give what the ORM gives."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.cache import caches
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from generator import services
from generator.lib.fragments import CACHE_ALIAS
from generator.models import Tag, Task
from generator.ownership import find_owned

from .conftest import client_for
from .factories import TagFactory, TaskFactory, claimed

CARD_TEMPLATE = "generator/_task_card.html"
CHINESE = {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9,en;q=0.5"}
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def empty_card_cache():
    caches[CACHE_ALIAS].clear()
    yield
    caches[CACHE_ALIAS].clear()


@pytest.fixture
def running(user) -> Task:
    task = claimed(TaskFactory(owner=user, prompt="a lantern in the fog"))
    Task.objects.filter(pk=task.pk).update(progress=40, started_at=timezone.now() - timedelta(seconds=75))
    task.refresh_from_db()
    return task


def poll(client: Client, task: Task, query: str = "", **headers):
    url = reverse("generator:task_card", args=[task.pk]) + (f"?{query}" if query else "")
    response = client.get(url, **HTMX, **headers)
    assert response.status_code == 200
    return response


def card_rendered(response) -> bool:
    """Whether the card's template ran for this response (not kept from an earlier poll)."""
    return CARD_TEMPLATE in [template.name for template in response.templates]


def csrf_value(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def test_an_unchanged_card_is_rendered_once_and_its_elapsed_time_ticks_per_poll(auth_client, running, monkeypatch):
    first = poll(auth_client, running)
    assert card_rendered(first)
    assert '<time class="task-elapsed" data-elapsed="75">1:15</time>' in first.content.decode()
    later = timezone.now() + timedelta(seconds=30)
    monkeypatch.setattr(timezone, "now", lambda: later)
    second = poll(auth_client, running)
    assert not card_rendered(second)  # kept
    html = second.content.decode()
    assert '<time class="task-elapsed" data-elapsed="105">1:45</time>' in html
    assert 'value="40"' in html and "a lantern in the fog" in html and "<!--atelier:" not in html


def test_progress_shows_on_the_next_poll(auth_client, running):
    poll(auth_client, running)
    Task.objects.filter(pk=running.pk).update(progress=65)
    response = poll(auth_client, running)
    assert card_rendered(response)
    assert (
        'value="65"' in response.content.decode()
        and '<span class="task-percent">65%</span>' in response.content.decode()
    )


def test_a_retry_with_its_reason_and_time_shows_on_the_next_poll(auth_client, running):
    assert 'class="badge badge-processing"' in poll(auth_client, running).content.decode()
    at = timezone.now() + timedelta(minutes=2)
    Task.objects.filter(pk=running.pk).update(
        status=Task.Status.RETRYING, error_message="The provider is busy.", next_attempt_at=at
    )
    html = poll(auth_client, running).content.decode()
    assert 'class="badge badge-retrying"' in html and "The provider is busy." in html
    assert f"Next attempt at {timezone.localtime(at):%H:%M:%S}" in html


def test_a_canceled_task_shows_as_canceled_on_the_next_poll(auth_client, running):
    assert ">Stop</button>" in poll(auth_client, running).content.decode()
    assert services.cancel_task(Task.objects.get(pk=running.pk))
    html = poll(auth_client, running).content.decode()
    assert 'class="badge badge-canceled"' in html and "Stop</button>" not in html and "hx-trigger" not in html


def test_each_poll_carries_its_own_csrf_token_and_it_is_accepted(user, running):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    other_tab = Client(enforce_csrf_checks=True)
    other_tab.force_login(user)
    first = csrf_value(poll(browser, running).content.decode())
    second = poll(other_tab, running)
    assert not card_rendered(second)
    assert csrf_value(second.content.decode()) != first
    cancel = reverse("generator:task_cancel", args=[running.pk])
    assert browser.post(cancel, {"csrfmiddlewaretoken": "x" * 64}, **HTMX).status_code == 403
    answered = browser.post(cancel, {"csrfmiddlewaretoken": first}, **HTMX)
    assert answered.status_code == 200 and Task.objects.get(pk=running.pk).status == Task.Status.CANCELED


def test_the_page_to_come_back_to_is_the_requests_own_and_escaped(auth_client, running):
    url = reverse("generator:task_card", args=[running.pk])
    poll(auth_client, running)
    html = poll(auth_client, running, query="a=1&b=2").content.decode()
    assert f'name="next" value="{url}?a=1&amp;b=2"' in html
    assert f'name="next" value="{url}"' in poll(auth_client, running).content.decode()


def test_a_prompt_cannot_pose_as_a_placeholder(auth_client, user):
    task = claimed(TaskFactory(owner=user, prompt="<!--atelier:card-csrf--> and <!--atelier:card-next-->"))
    for _ in range(2):
        html = poll(auth_client, task).content.decode()
        assert "&lt;!--atelier:card-csrf--&gt; and &lt;!--atelier:card-next--&gt;" in html


def test_another_persons_task_stays_a_404_once_its_card_is_kept(auth_client, other_user, running):
    poll(auth_client, running)
    url = reverse("generator:task_card", args=[running.pk])
    assert client_for(other_user).get(url, **HTMX).status_code == 404


def test_each_language_has_its_own_card(auth_client, running):
    english = poll(auth_client, running).content.decode()
    chinese = poll(auth_client, running, **CHINESE).content.decode()
    assert "Elapsed" in english and "Elapsed" not in chinese
    assert 'lang="zh' not in chinese and chinese != english


# --- the lookup with SQL compiled once ------------------------------------------------------------


def test_an_owned_lookup_gives_what_the_orm_gives_in_one_query(
    rf, user, other_user, running, django_assert_num_queries
):
    request = rf.get("/")
    request.user = user
    Task.objects.filter(pk=running.pk).update(provider_job={"job": "j-1", "queued": True})
    with django_assert_num_queries(1):
        found = find_owned(Task, request, str(running.pk))
    expected = Task.objects.get(pk=running.pk)
    assert found is not None and found.pk == running.pk
    for field in Task._meta.concrete_fields:
        assert getattr(found, field.attname) == getattr(expected, field.attname), field.name
    assert timezone.is_aware(found.created_at) and found.provider_job == {"job": "j-1", "queued": True}
    with django_assert_num_queries(1):
        assert find_owned(Task, request, running.pk) is not None  # a UUID as well as its text
    stranger = rf.get("/")
    stranger.user = other_user
    assert find_owned(Task, stranger, running.pk) is None
    assert find_owned(Task, request, "not-a-task-id") is None


def test_an_owned_lookup_works_for_whole_number_keys(rf, user, other_user):
    tag = TagFactory(owner=user)
    request = rf.get("/")
    request.user = user
    assert find_owned(Tag, request, tag.pk) == tag
    assert find_owned(Tag, request, str(tag.pk)) == tag
    request.user = other_user
    assert find_owned(Tag, request, tag.pk) is None


def test_a_key_past_what_the_column_holds_is_no_row_and_a_404(auth_client, rf, user):
    # the ORM answers such a number with no rows; SQLite would raise if it were sent
    request = rf.get("/")
    request.user = user
    assert find_owned(Tag, request, 2**64) is None
    tag = TagFactory(owner=user, name="dunes")
    for action in ("rename", "delete"):
        assert auth_client.post(f"/tags/{2**64}/{action}", {"name": "x"}).status_code == 404
    assert Tag.objects.get(pk=tag.pk).name == "dunes"
