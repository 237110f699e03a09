"""The API's lists (tasks, history, images), deletes, tags and system info."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from generator import providers
from generator.models import Image, Tag, Task
from generator.scheduler.inline import run_task

from .factories import TagFactory, TaskFactory, claimed


def completed(user, **fields) -> Task:
    task = TaskFactory(owner=user, **fields)
    run_task(str(task.pk))
    return Task.objects.get(pk=task.pk)


def test_tasks_are_listed_newest_first_with_cursor_pages(auth_client, user):
    made = [TaskFactory(owner=user, prompt=f"study {i}") for i in range(5)]
    first = auth_client.get("/api/v1/tasks?limit=2").json()
    assert [t["prompt"] for t in first["results"]] == ["study 4", "study 3"] and first["next"]
    second = auth_client.get(f"/api/v1/tasks?limit=2&cursor={first['next']}").json()
    third = auth_client.get(f"/api/v1/tasks?limit=2&cursor={second['next']}").json()
    seen = [t["task_id"] for page in (first, second, third) for t in page["results"]]
    assert sorted(seen) == sorted(str(t.pk) for t in made) and third["next"] is None


def test_tasks_filter_by_status_and_text(auth_client, user):
    TaskFactory(owner=user, prompt="a red kite")
    failed = TaskFactory(owner=user, prompt="a blue kite")
    failed.mark_failed("content_rejected", "no")
    assert [t["prompt"] for t in auth_client.get("/api/v1/tasks?status=failed").json()["results"]] == ["a blue kite"]
    assert [t["prompt"] for t in auth_client.get("/api/v1/tasks?q=RED").json()["results"]] == ["a red kite"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("cursor=nonsense", "cursor"),
        ("status=done", "status"),
    ],
)
def test_bad_list_parameters_are_a_400_per_field(auth_client, query, field):
    response = auth_client.get(f"/api/v1/tasks?{query}")
    assert response.status_code == 400 and field in response.json()["details"]


def test_history_lists_only_finished_tasks_with_their_images(auth_client, user):
    done = completed(user, num_images=2)
    TaskFactory(owner=user)  # still pending
    [entry] = auth_client.get("/api/v1/history").json()["results"]
    assert entry["task_id"] == str(done.pk) and len(entry["images"]) == 2


def test_another_persons_tasks_are_never_listed(auth_client, other_client, user):
    completed(user)
    assert other_client.get("/api/v1/tasks").json()["results"] == []
    assert other_client.get("/api/v1/history").json()["results"] == []
    assert other_client.get("/api/v1/images").json()["results"] == []


def test_deleting_a_task_cancels_it_and_removes_images_and_files(
    auth_client, user, media_root, django_capture_on_commit_callbacks
):
    done = completed(user)
    pending = TaskFactory(owner=user)
    with django_capture_on_commit_callbacks(execute=True):
        assert auth_client.delete(f"/api/v1/task/{done.pk}").status_code == 204
        assert auth_client.delete(f"/api/v1/task/{pending.pk}").status_code == 204
    assert not Task.objects.exists() and not Image.objects.exists()
    assert [p for p in Path(media_root).rglob("*") if p.is_file()] == []


def test_history_delete_only_removes_finished_tasks(auth_client, user):
    pending = TaskFactory(owner=user)
    assert auth_client.delete(f"/api/v1/history/{pending.pk}").status_code == 404
    done = completed(user)
    assert auth_client.delete(f"/api/v1/history/{done.pk}").status_code == 204
    assert list(Task.objects.values_list("pk", flat=True)) == [pending.pk]


def test_another_person_cannot_delete_my_task(other_client, user):
    done = completed(user)
    for url in (f"/api/v1/task/{done.pk}", f"/api/v1/history/{done.pk}"):
        assert other_client.delete(url).status_code == 404
    assert Task.objects.filter(pk=done.pk).exists()


def test_images_filter_by_tag_and_favourite(auth_client, user):
    task = completed(user, num_images=2)
    first, second = task.ordered_images
    first.tags.add(TagFactory(owner=user, name="Sunsets"))
    Image.objects.filter(pk=second.pk).update(is_favorite=True)
    by_tag = auth_client.get("/api/v1/images?tag=sunsets").json()["results"]
    assert [i["image_id"] for i in by_tag] == [str(first.pk)] and by_tag[0]["tags"] == ["Sunsets"]
    favourites = auth_client.get("/api/v1/images?favorite=true").json()["results"]
    assert [i["image_id"] for i in favourites] == [str(second.pk)]
    assert auth_client.get("/api/v1/images?favorite=maybe").status_code == 400


def test_tags_are_added_and_removed_on_an_image(auth_client, user):
    image = completed(user).images.get()
    added = auth_client.post(
        f"/api/v1/images/{image.pk}/tags", {"name": "  harbour  "}, content_type="application/json"
    )
    assert added.status_code == 201 and added.json()["tags"] == ["harbour"]
    again = auth_client.post(f"/api/v1/images/{image.pk}/tags", {"name": "HARBOUR"}, content_type="application/json")
    assert again.json()["tags"] == ["harbour"] and Tag.objects.count() == 1
    assert auth_client.delete(f"/api/v1/images/{image.pk}/tags/Harbour").status_code == 204
    assert not image.tags.exists() and Tag.objects.count() == 1  # the tag itself stays
    assert auth_client.delete(f"/api/v1/images/{image.pk}/tags/harbour").status_code == 404


@pytest.mark.parametrize("body", [{"name": ""}, {"name": "x" * 51}, {"name": 5}, {"name": "a\x00b"}, [], "nope"])
def test_invalid_tag_names_are_a_400(auth_client, user, body):
    image = completed(user).images.get()
    response = auth_client.post(f"/api/v1/images/{image.pk}/tags", body, content_type="application/json")
    assert response.status_code == 400 and response.json()["error"] == "validation_error"
    assert not Tag.objects.exists()


def test_another_persons_image_tags_are_404(other_client, user):
    image = completed(user).images.get()
    assert (
        other_client.post(f"/api/v1/images/{image.pk}/tags", {"name": "x"}, content_type="application/json").status_code
        == 404
    )
    assert other_client.delete(f"/api/v1/images/{image.pk}/tags/x").status_code == 404
    assert (
        other_client.post(
            f"/api/v1/images/{uuid.uuid4()}/tags", {"name": "x"}, content_type="application/json"
        ).status_code
        == 404
    )


def test_system_info_reports_version_providers_and_my_limits(auth_client, user, settings):
    settings.MAX_QUEUED_TASKS_PER_USER = 3
    TaskFactory(owner=user)
    auth_client.post("/api/v1/generate", {"prompt": "a"}, content_type="application/json")
    data = auth_client.get("/api/v1/system/info").json()
    assert data["version"] == settings.ATELIER_VERSION
    assert [p["name"] for p in data["providers"]] == ["offline"]
    assert data["limits"]["queued_tasks"] == {"used": 2, "max": 3}
    assert data["limits"]["generate_rate"]["rate"] == settings.GENERATE_RATE
    assert data["limits"]["generate_rate"]["used"] == 1


def test_system_info_shows_a_provider_at_its_limit_and_counts_only_my_waiting_tasks(
    auth_client, user, other_user, settings
):
    settings.PROVIDER_LIMITS = {"offline": {"CONCURRENCY": 2, "RATE": "30/m", "FALLBACK": ""}}
    settings.MAX_QUEUED_TASKS_PER_USER = 5
    claimed(TaskFactory(owner=user))  # generating: in flight, but no longer waiting
    TaskFactory(owner=other_user, status=Task.Status.PROCESSING)
    TaskFactory(owner=user)
    TaskFactory(owner=user, status=Task.Status.RETRYING)
    TaskFactory(owner=other_user)
    TaskFactory(owner=user, status=Task.Status.FAILED)
    data = auth_client.get("/api/v1/system/info").json()
    assert data["providers"] == [
        {
            "name": "offline",
            "label": "Offline sketch",
            "is_sketch": True,
            "concurrency": 2,
            "rate": "30/m",
            "in_flight": 2,
            "queued": 3,
        }
    ]
    assert data["limits"]["queued_tasks"] == {"used": 2, "max": 5}


def test_system_info_has_no_limit_for_a_provider_without_a_rate(auth_client, settings):
    settings.PROVIDER_LIMITS = {"offline": {"CONCURRENCY": 3, "RATE": "", "FALLBACK": ""}}
    [offline] = auth_client.get("/api/v1/system/info").json()["providers"]
    assert offline["concurrency"] == 3 and offline["rate"] is None
    assert offline["in_flight"] == 0 and offline["queued"] == 0


def test_system_info_costs_the_same_queries_however_many_providers(auth_client, user, scripted, settings):
    settings.PROVIDER_LIMITS = {
        "offline": {"CONCURRENCY": 1, "RATE": "1/h", "FALLBACK": ""},
        "scripted": {"CONCURRENCY": 1, "RATE": "1/h", "FALLBACK": ""},
    }
    TaskFactory(owner=user, status=Task.Status.PROCESSING)
    TaskFactory(owner=user, provider="scripted", model="fixed", status=Task.Status.PROCESSING)
    auth_client.get("/api/v1/system/info")  # the session and the user, once
    with CaptureQueriesContext(connection) as two_providers:
        data = auth_client.get("/api/v1/system/info").json()
    assert [p["in_flight"] for p in data["providers"]] == [1, 1]
    settings.EXTRA_PROVIDERS = {}
    providers.reset_cache()
    with CaptureQueriesContext(connection) as one_provider:
        data = auth_client.get("/api/v1/system/info").json()
    assert [p["name"] for p in data["providers"]] == ["offline"]
    assert len(two_providers) == len(one_provider)


def test_health_is_public(client, db):
    response = client.get("/api/v1/health")
    assert response.status_code == 200 and response.json()["status"] == "ok"


@pytest.mark.parametrize("url", ["/api/v1/tasks", "/api/v1/history", "/api/v1/images", "/api/v1/system/info"])
def test_lists_need_sign_in(client, db, url):
    assert client.get(url).status_code == 401
