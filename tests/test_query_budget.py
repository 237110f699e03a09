"""The requests a browser or script repeats most stay within a fixed number of queries:
they are what the benchmarks load (docs/PERFORMANCE.md)."""

from __future__ import annotations

from django.urls import reverse

from accounts.tokens import create_token

from .factories import TaskFactory, claimed


def test_a_status_poll_costs_three_queries(auth_client, completed_task, django_assert_num_queries):
    auth_client.get(reverse("generator:task_card", args=[completed_task.pk]))  # the session is cached now
    # The user, the task, its images: the session comes from the cache.
    with django_assert_num_queries(3):
        response = auth_client.get(reverse("generator:task_card", args=[completed_task.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200


def test_a_thumbnail_costs_two_queries_and_no_permission_lookups(
    auth_client, completed_task, django_assert_num_queries
):
    image = completed_task.ordered_images[0]
    auth_client.get(reverse("api:image_thumbnail", args=[image.pk]))
    with django_assert_num_queries(2):  # the user and the image
        response = auth_client.get(reverse("api:image_thumbnail", args=[image.pk]))
    assert response.status_code == 200


def test_the_api_task_endpoint_costs_three_queries_with_a_token(
    user, completed_task, client, django_assert_num_queries
):
    token = create_token(user, "poller").plaintext
    url = reverse("api:task_detail", args=[completed_task.pk])
    client.get(url, HTTP_AUTHORIZATION=f"Bearer {token}")  # records the token's use, once a minute
    with django_assert_num_queries(3):  # the token with its owner, the task, its images
        response = client.get(url, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200 and response.json()["status"] == "completed"


def test_a_generating_card_poll_costs_two_queries_once_the_estimate_is_cached(
    auth_client, user, django_assert_num_queries
):
    task = claimed(TaskFactory(owner=user))  # generating: progress, elapsed, estimate, Stop
    url = reverse("generator:task_card", args=[task.pk])
    auth_client.get(url)  # the session and the estimate are cached now
    with django_assert_num_queries(2):  # the user, the task
        assert auth_client.get(url, HTTP_HX_REQUEST="true").status_code == 200


def test_an_api_poll_of_an_unfinished_task_costs_two_queries(user, client, django_assert_num_queries):
    task = claimed(TaskFactory(owner=user))  # what a script polls until it is done
    token = create_token(user, "poller").plaintext
    url = reverse("api:task_detail", args=[task.pk])
    client.get(url, HTTP_AUTHORIZATION=f"Bearer {token}")  # the token's use and the estimate, once
    with django_assert_num_queries(2):  # the token with its owner, the task: no images to ask for yet
        response = client.get(url, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200 and response.json()["images"] == []


def test_a_thumbnail_reads_only_what_serving_it_needs(auth_client, completed_task, django_assert_num_queries):
    image = completed_task.ordered_images[0]
    auth_client.get(reverse("api:image_thumbnail", args=[image.pk]))
    with django_assert_num_queries(2) as queries:  # the user and the image, no deferred column fetched later
        response = auth_client.get(reverse("api:image_thumbnail", args=[image.pk]))
    assert response.status_code == 200 and response["ETag"] == f'"{image.pk}-t"'
    assert '"prompt"' not in queries.captured_queries[-1]["sql"] and '"file"' not in queries.captured_queries[-1]["sql"]
