"""Small things a new user met (docs: the UX audit's bug list), each as they should be now:
history after deleting the last match, the seed range of a fixed-seed task, /favicon.ico on
every page (the admin's too), and the admin overview agreeing with a live worker cluster and
listing the sign-ups waiting for approval."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from generator.models import Task
from generator.ops import health

from .factories import FinishedTaskFactory, ImageFactory, TaskFactory

HISTORY = reverse("generator:history")
OVERVIEW = "admin:generator_overview"


# --- history: deleting the last row a search shows ------------------------------------------


def delete(client: Client, task: Task, back: str, **headers):
    return client.post(reverse("generator:task_delete", args=[task.pk]), {"confirm": "yes", "next": back}, **headers)


def test_deleting_the_last_match_with_htmx_replaces_the_table_with_the_no_match_text(auth_client, user):
    phone = FinishedTaskFactory(owner=user, prompt="an old phone on a desk")
    FinishedTaskFactory(owner=user, prompt="a lighthouse")  # the person still has other tasks
    page = auth_client.get(HISTORY, {"q": "phone"}).content.decode()
    assert "history-table" in page and 'id="history-list"' in page
    response = delete(
        auth_client, phone, "/history/?q=phone", HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL="/history/?q=phone"
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "Task deleted with its 1 image." in html
    # The list, swapped in out of band: no table with headers only, the sentence instead.
    assert '<div id="history-list" hx-swap-oob="true">' in html
    assert "No tasks match “phone”." in html and "<table" not in html


def test_deleting_the_last_task_of_all_says_there_are_none_yet(auth_client, user):
    only = FinishedTaskFactory(owner=user, prompt="phone")
    html = delete(auth_client, only, "/history/?q=phone", HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-swap-oob="true"' in html and "No tasks yet." in html


def test_deleting_a_match_that_is_not_the_last_swaps_only_the_row(auth_client, user):
    first = FinishedTaskFactory(owner=user, prompt="phone one")
    FinishedTaskFactory(owner=user, prompt="phone two")
    html = delete(auth_client, first, "/history/?q=phone", HTTP_HX_REQUEST="true").content.decode()
    assert "history-list" not in html and "Task deleted" in html


def test_deleting_the_last_match_of_a_status_filter_names_it(auth_client, user):
    failed = TaskFactory(owner=user, status=Task.Status.FAILED, prompt="phone")
    FinishedTaskFactory(owner=user, prompt="phone")
    html = delete(auth_client, failed, "/history/?status=failed&q=phone", HTTP_HX_REQUEST="true").content.decode()
    assert "No tasks match “phone” among failed tasks." in html


def test_without_javascript_the_redirect_shows_the_no_match_text(auth_client, user):
    phone = FinishedTaskFactory(owner=user, prompt="phone")
    FinishedTaskFactory(owner=user, prompt="lighthouse")
    response = delete(auth_client, phone, "/history/?q=phone")
    assert response.status_code == 302 and response["Location"] == "/history/?q=phone"
    html = auth_client.get(response["Location"]).content.decode()
    assert "No tasks match “phone”." in html and "history-table" not in html


# --- the seed label ---------------------------------------------------------------------------


def test_a_fixed_seed_task_of_three_images_is_labelled_with_their_seeds(auth_client, user):
    task = FinishedTaskFactory(owner=user, seed=42, num_images=3)
    assert sorted(image.seed for image in task.images.all()) == [42, 43, 44]
    assert Task.objects.get(pk=task.pk).seed_label == "42–44"
    for url in (HISTORY, task.get_absolute_url(), reverse("generator:task_card", args=[task.pk])):
        html = auth_client.get(url).content.decode()
        assert "seed 42–44" in html or "42–44" in html, url
        assert "seed 42 " not in html and "seed 42<" not in html, url


def test_seed_labels_before_and_without_images(user):
    assert TaskFactory(owner=user, seed=42, num_images=3).seed_label == "42"  # nothing made yet
    assert TaskFactory(owner=user, seed=None, num_images=2).seed_label == "random"
    single = FinishedTaskFactory(owner=user, seed=7, num_images=1)
    assert single.seed_label == "7"


def test_seeds_that_are_not_a_run_are_listed(user):
    task = FinishedTaskFactory(owner=user, seed=None, num_images=2, images=0)
    ImageFactory(task=task, index=0, seed=9)
    ImageFactory(task=task, index=1, seed=3)
    assert Task.objects.get(pk=task.pk).seed_label == "9, 3"


# --- /favicon.ico -------------------------------------------------------------------------------


@pytest.mark.parametrize("signed_in", [False, True])
def test_favicon_ico_is_the_app_icon(client, user, signed_in):
    if signed_in:
        client.force_login(user)
    response = client.get("/favicon.ico")
    assert response.status_code == 302 and response["Location"].endswith(".svg")
    assert "icons/atelier" in response["Location"]  # served by whitenoise: tests/security/test_defaults_make_run.py


def test_admin_pages_link_the_icon(db):
    staff = User.objects.create_superuser("boss", password="pw-for-tests-only")
    client = Client()
    assert 'rel="icon"' in client.get(reverse("admin:login")).content.decode()
    client.force_login(staff)
    for url in (reverse("admin:index"), reverse(OVERVIEW), reverse("admin:generator_task_changelist")):
        assert 'rel="icon"' in client.get(url).content.decode(), url


# --- the admin overview -------------------------------------------------------------------------


@pytest.fixture
def staff_client(db) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("boss", password="pw-for-tests-only"))
    return client


def test_overview_lists_sign_ups_waiting_for_approval_with_a_link_to_approve(staff_client, settings):
    settings.SIGNUP = "approval"
    signup = Client()
    response = signup.post(
        reverse("signup"), {"username": "newbie", "password1": "a-long-pass-phrase", "password2": "a-long-pass-phrase"}
    )
    assert response.status_code == 201 and not User.objects.get(username="newbie").is_active
    # Someone staff turned off after using the site is not "waiting".
    User.objects.create_user("gone", password="x", is_active=False, last_login=timezone.now())
    page = staff_client.get(reverse(OVERVIEW))
    html = page.content.decode()
    signups = page.context["overview"].signups
    assert [account.username for account in signups.waiting] == ["newbie"] and signups.waiting_count == 1
    assert 'id="overview-signups"' in html and "newbie" in html.split('id="overview-signups"')[1].split("</table>")[0]
    link = reverse("admin:auth_user_changelist") + "?is_active__exact=0&amp;last_login__isnull=True"
    assert link in html
    # The link lists exactly the waiting account, where "Approve selected accounts" is offered.
    listing = staff_client.get(link.replace("&amp;", "&")).content.decode()
    assert "newbie" in listing and ">gone<" not in listing and "approve_accounts" in listing


def test_overview_says_when_nobody_waits(staff_client, settings):
    settings.SIGNUP = "approval"
    html = staff_client.get(reverse(OVERVIEW)).content.decode()
    assert "No account is waiting for approval." in html


@pytest.mark.cluster
def test_overview_sees_a_live_cluster_before_anything_called_readyz(start_qcluster, settings, tmp_path):
    # The web process reads django-q2's cluster statistics from the cache the cluster writes to.
    settings.CACHES = {
        **settings.CACHES,
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path / "qcluster" / "cache"),
        },
    }
    start_qcluster()
    from django_q.status import Stat

    deadline = time.monotonic() + 15
    while not Stat.get_all() and time.monotonic() < deadline:  # its first heartbeat
        time.sleep(0.2)
    assert Stat.get_all(), "the cluster never reported"
    cache.delete(health.WORKER_SEEN_KEY)  # nothing has asked /readyz yet (a fresh restart)
    client = Client()
    client.force_login(User.objects.create_superuser("boss", password="pw-for-tests-only"))
    response = client.get(reverse(OVERVIEW))
    html = response.content.decode()
    overview = response.context["overview"]
    assert overview.heartbeats.clusters and overview.heartbeats.remembered_seconds_ago == 0
    assert "Readiness never saw a cluster" not in html and "Readiness sees a cluster now." in html
    worker = dict(overview.readiness)["Worker"]
    assert worker["ok"] and worker["clusters"] >= 1
    cache.clear()
