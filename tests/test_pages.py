from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from generator.models import Task
from generator.providers.errors import MESSAGES as PROVIDER_MESSAGES
from generator.reasons import Reason
from generator.scheduler import steps

from .factories import TaskFactory, claimed

PAGES = ["generator:create", "generator:gallery", "generator:history"]


@pytest.mark.parametrize("name", PAGES)
def test_signed_out_visitors_are_sent_to_sign_in(client, db, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_create_page_offers_the_offline_sketch(auth_client):
    response = auth_client.get(reverse("generator:create"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'value="offline:sketch-v1"' in html
    assert "Offline sketch (not AI)" in html
    assert "Nothing yet" in html


def test_submitting_without_javascript_creates_the_task_and_shows_it(
    auth_client, user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):  # the worker runs inline in tests
        response = auth_client.post(
            reverse("generator:create"),
            {
                "prompt": "a quiet harbour",
                "model": "offline:sketch-v1",
                "size": "512x512",
                "num_images": "2",
                "random_seed": "on",
            },
        )
    assert response.status_code == 302
    response = auth_client.get(response["Location"])
    task = Task.objects.get(owner=user)
    assert (task.prompt, task.width, task.height, task.num_images, task.seed) == ("a quiet harbour", 512, 512, 2, None)
    assert task.status == Task.Status.COMPLETED
    html = response.content.decode()
    assert f'id="task-{task.pk}"' in html
    assert all(image.thumbnail_url in html for image in task.images.all())
    assert html.count("offline sketch") >= 1


def test_submitting_with_htmx_returns_just_the_task_card(auth_client, user):
    response = auth_client.post(
        reverse("generator:create"),
        {"prompt": "a quiet harbour", "model": "offline:sketch-v1", "size": "512x512", "num_images": "1", "seed": "77"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 201
    html = response.content.decode()
    assert html.lstrip().startswith("<article") and "<html" not in html
    assert Task.objects.get(owner=user).seed == 77


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"prompt": ""}, "prompt", "Describe the picture you want."),
        ({"prompt": "   "}, "prompt", "Describe the picture you want."),
        ({"prompt": "x" * 5000}, "prompt", "Keep the prompt under 2000 characters."),
        ({"size": "99999x1"}, "size", "Width and height must be between 64 and 2048 pixels"),
        ({"size": "huge"}, "size", "Select a valid choice."),
        ({"num_images": "0"}, "num_images", "Choose between 1 and 4 images."),
        ({"num_images": "9"}, "num_images", "Choose between 1 and 4 images."),
        ({"seed": "abc", "random_seed": ""}, "seed", "Enter a whole number for the seed, or choose random."),
        ({"model": "nope:model"}, "provider", "Unknown provider “nope”."),
        ({"model": "offline:dall-e"}, "model", "has no model “dall-e”"),
    ],
)
def test_bad_input_gets_a_clear_error_in_place_and_creates_nothing(auth_client, data, field, message):
    valid = {"prompt": "a boat", "model": "offline:sketch-v1", "size": "512x512", "num_images": "1"}
    response = auth_client.post(reverse("generator:create"), {**valid, **data}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200  # htmx swaps only 2xx
    assert response["HX-Retarget"] == "#generate-form"
    assert message in response.content.decode()
    assert not Task.objects.exists()


def test_bad_input_without_javascript_rerenders_the_page_with_errors(auth_client):
    response = auth_client.post(reverse("generator:create"), {"prompt": "", "model": "offline:sketch-v1"})
    assert response.status_code == 400
    assert "Describe the picture you want." in response.content.decode()
    assert not Task.objects.exists()


def test_an_active_task_card_polls_and_a_finished_one_stops(auth_client, user):
    task = TaskFactory(owner=user)
    card_url = reverse("generator:task_card", args=[task.pk])
    assert f'hx-get="{card_url}"' in auth_client.get(card_url).content.decode()
    claimed(task)
    task.mark_completed()
    assert "hx-get" not in auth_client.get(card_url).content.decode()


def test_a_failed_task_shows_its_reason(auth_client, user):
    task = TaskFactory(owner=user)
    task.mark_failed("content_rejected", "The provider rejected this prompt as sensitive content.")
    for url in (reverse("generator:task_card", args=[task.pk]), reverse("generator:history")):
        assert "The provider rejected this prompt as sensitive content." in auth_client.get(url).content.decode()


def test_prompts_are_escaped(auth_client, user):
    TaskFactory(owner=user, prompt="<script>alert(1)</script>")
    for name in PAGES:
        html = auth_client.get(reverse(name)).content.decode()
        assert "<script>alert(1)" not in html


def test_the_gallery_shows_only_my_images_newest_first(auth_client, completed_task, other_user):
    other_task = TaskFactory(owner=other_user)
    from generator.scheduler.inline import run_task

    run_task(str(other_task.pk))
    html = auth_client.get(reverse("generator:gallery")).content.decode()
    mine = list(completed_task.images.all())
    assert all(image.thumbnail_url in html for image in mine)
    assert other_task.images.get().thumbnail_url not in html


def test_history_lists_status_parameters_duration_and_error(auth_client, completed_task):
    html = auth_client.get(reverse("generator:history")).content.decode()
    assert "Completed" in html and "256×192" in html and "seed 1234" in html
    assert " s</td>" in html  # the duration


def test_cancel_a_pending_task(auth_client, user):
    task = TaskFactory(owner=user)
    response = auth_client.post(reverse("generator:task_cancel", args=[task.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "Canceled" in response.content.decode()
    assert Task.objects.get(pk=task.pk).status == Task.Status.CANCELED


@pytest.mark.parametrize("name", ["generator:task_detail", "generator:task_card"])
def test_another_persons_task_pages_are_not_found(other_client, completed_task, name):
    assert other_client.get(reverse(name, args=[completed_task.pk])).status_code == 404


def test_another_person_cannot_cancel_my_task(other_client, user):
    task = TaskFactory(owner=user)
    assert other_client.post(reverse("generator:task_cancel", args=[task.pk])).status_code == 404
    assert Task.objects.get(pk=task.pk).status == Task.Status.PENDING


def test_the_task_page_offers_downloads(auth_client, completed_task):
    html = auth_client.get(reverse("generator:task_detail", args=[completed_task.pk])).content.decode()
    assert html.count("?download=1") == 2


def test_a_poll_after_the_session_ended_redirects_the_whole_page(client, user):
    task = TaskFactory(owner=user)
    response = client.get(
        reverse("generator:task_card", args=[task.pk]), HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL="http://testserver/"
    )
    assert response.status_code == 200
    assert response["HX-Redirect"].startswith(reverse("login"))
    assert response.content == b""


# --- what the scheduler tells the person ------------------------------------------------------

BUSY = Reason(PROVIDER_MESSAGES["rate_limited.http_429"])


def card_and_detail(client, task: Task) -> list[str]:
    urls = [reverse("generator:task_card", args=[task.pk]), reverse("generator:task_detail", args=[task.pk])]
    return [client.get(url).content.decode() for url in urls]


@pytest.mark.parametrize(
    ("time_zone", "local"), [("UTC", "2026-12-04T18:42:10"), ("Asia/Shanghai", "2026-12-05T02:42:10")]
)
def test_a_retrying_task_says_when_it_tries_next(auth_client, user, settings, time_zone, local):
    settings.TIME_ZONE = time_zone
    task = claimed(TaskFactory(owner=user))
    retrying = Reason(steps.RETRYING, {"reason": BUSY, "delay": "12", "attempt": 1, "attempts": 3})
    assert task.mark_retrying("rate_limited", retrying, datetime(2026, 12, 4, 18, 42, 10, tzinfo=UTC))
    for html in card_and_detail(auth_client, task):
        assert f'<time datetime="{local}' in html and f"Next attempt at {local[11:]}</time>" in html
        assert "The provider is busy (rate limit reached). Trying again in 12 s (attempt 1 of 3)." in html
        assert "hx-get" in html  # still polled while it waits


def test_a_task_watching_its_vendor_job_says_so_and_can_be_canceled(auth_client, user):
    task = claimed(TaskFactory(owner=user))
    held_card = auth_client.get(reverse("generator:task_card", args=[task.pk])).content.decode()
    assert "at the provider" not in held_card
    # A worker is mid-call: it can be stopped all the same (the worker then keeps nothing).
    assert reverse("generator:task_cancel", args=[task.pk]) in held_card and ">Stop</button>" in held_card

    assert task.watch_job({"state": {"id": "job-1"}}, timezone.now() + timedelta(seconds=3), progress=10)
    cancel_url = reverse("generator:task_cancel", args=[task.pk])
    for html in card_and_detail(auth_client, task):
        assert "Generating at the provider (job submitted)." in html
        assert f'action="{cancel_url}"' in html
        assert 'hx-trigger="load delay:1s"' in html  # the card keeps polling

    response = auth_client.post(cancel_url, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "Canceled" in response.content.decode()
    assert "hx-get" not in response.content.decode()
    assert Task.objects.get(pk=task.pk).status == Task.Status.CANCELED


def test_a_completed_task_shows_its_note(auth_client, user):
    task = claimed(TaskFactory(owner=user, num_images=4))
    assert task.mark_completed(note=Reason(steps.PARTIAL, {"failed": 2, "wanted": 4}))
    for html in card_and_detail(auth_client, task):
        assert "2 of 4 pictures failed at the provider; the others were kept." in html
    plain = claimed(TaskFactory(owner=user))
    assert plain.mark_completed()
    assert (
        "failed at the provider"
        not in auth_client.get(reverse("generator:task_card", args=[plain.pk])).content.decode()
    )


@pytest.mark.parametrize("finish", [None, "completed"])
def test_a_failed_over_task_says_where_it_ran_first(auth_client, user, finish):
    task = claimed(TaskFactory(owner=user, provider="dashscope", model="wanx2.1-t2i-turbo"))
    moved_from = {
        "provider": "dashscope",
        "model": "wanx2.1-t2i-turbo",
        "code": "rate_limited",
        "reason": BUSY.as_json(),
        "attempts": 3,
        "at": timezone.now().isoformat(),
    }
    assert task.move_to("offline", "sketch-v1", {}, moved_from)
    if finish:
        claimed(task).mark_completed()
    for html in card_and_detail(auth_client, task):
        assert "First tried dashscope (wanx2.1-t2i-turbo): The provider is busy (rate limit reached)." in html
