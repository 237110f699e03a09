"""Making a picture: the form's size rules, what counts against GENERATE_RATE, Idempotency-Key
on POST /api/v1/generate, and Rerun / Reuse settings for a task."""

from __future__ import annotations

import concurrent.futures
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from generator import limits
from generator.forms import GenerateForm
from generator.models import IdempotencyKey, Task

from .factories import TaskFactory, UserFactory
from .test_limits import api_session

GENERATE = "/api/v1/generate"
BODY = {"prompt": "a kite", "width": 256, "height": 256}
PAGE_FORM = {"prompt": "a kite", "model": "offline:sketch-v1", "num_images": "1"}
pytestmark = pytest.mark.usefixtures("ratelimit_clock")


def api(client: Client, body: dict | None = None, key: str | None = None):
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    return client.post(GENERATE, body or BODY, content_type="application/json", **headers)


def used(client: Client) -> int:
    return client.get("/api/v1/system/info").json()["limits"]["generate_rate"]["used"]


# --- the form: width and height with the model's limits ---------------------------------------


def form(**fields) -> GenerateForm:
    return GenerateForm({**PAGE_FORM, **fields})


@pytest.mark.django_db
def test_any_width_and_height_the_model_takes_is_accepted():
    generated = form(width="640", height="448", size="")
    assert generated.is_valid(), generated.errors
    assert (generated.cleaned_data["width"], generated.cleaned_data["height"]) == (640, 448)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("width", "height", "message"),
    [
        ("641", "448", "Width and height must be multiples of 8."),
        ("32", "448", "Width and height must be between 64 and 2048 pixels"),
        ("4096", "448", "Width and height must be between 64 and 2048 pixels"),
        ("640", "", "Give both width and height."),
        ("abc", "448", "Enter a whole number."),
    ],
)
def test_a_size_the_model_does_not_take_is_refused_by_the_size_boxes(width, height, message):
    generated = form(width=width, height=height)
    assert not generated.is_valid()
    errors = [str(text) for field in ("width", "height") for text in generated.errors.get(field, [])]
    assert any(message in text for text in errors), errors


@pytest.mark.django_db
def test_a_chosen_preset_wins_over_the_boxes_and_no_preset_means_the_boxes():
    preset = form(size="512x512", width="640", height="448")
    assert preset.is_valid() and (preset.cleaned_data["width"], preset.cleaned_data["height"]) == (512, 512)
    nothing = form()
    assert nothing.is_valid() and (nothing.cleaned_data["width"], nothing.cleaned_data["height"]) == (1024, 1024)


def test_the_page_shows_the_size_boxes_the_presets_and_the_lock(auth_client):
    html = auth_client.get(reverse("generator:create")).content.decode()
    assert 'name="width" id="id_width"' in html and 'name="height" id="id_height"' in html
    assert 'value="1024"' in html
    assert '<option value="" selected>Custom: the width and height below</option>' in html
    assert 'value="1280x720"' in html  # the presets stay as shortcuts
    assert 'id="size-lock"' in html
    assert 'hx-disabled-elt="find button[type=submit]"' in html and 'hx-sync="this:drop"' in html


def test_a_size_error_is_shown_next_to_the_size_boxes_in_the_persons_language(auth_client):
    response = auth_client.post(
        reverse("generator:create"), {**PAGE_FORM, "width": "650", "height": "512"}, HTTP_HX_REQUEST="true"
    )
    html = response.content.decode()
    assert 'id="size-errors"' in html and "Width and height must be multiples of 8." in html
    chinese = auth_client.post(
        reverse("generator:create"),
        {**PAGE_FORM, "width": "650", "height": "512"},
        HTTP_HX_REQUEST="true",
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    assert "宽度和高度必须是8的倍数。" in chinese.content.decode()
    assert not Task.objects.exists()


def test_the_form_problem_sits_after_the_generate_button(auth_client):
    html = auth_client.get(reverse("generator:create")).content.decode()
    assert html.index('class="primary generate-button"') < html.index('id="form-problem"')


# --- GENERATE_RATE counts tasks made, not submissions -----------------------------------------


def test_ten_invalid_submissions_leave_the_rate_untouched(auth_client, settings):
    settings.GENERATE_RATE = "2/m"
    for _ in range(5):
        assert auth_client.post(reverse("generator:create"), {**PAGE_FORM, "prompt": ""}).status_code == 400
        assert api(auth_client, {"prompt": ""}).status_code == 400
    assert used(auth_client) == 0
    assert api(auth_client).status_code == 201
    assert auth_client.post(reverse("generator:create"), PAGE_FORM).status_code == 302
    assert used(auth_client) == 2
    refused = api(auth_client)
    assert refused.status_code == 429 and refused.json()["reason"] == "generate_rate"
    assert auth_client.post(reverse("generator:create"), PAGE_FORM).status_code == 429
    assert used(auth_client) == 2  # refusals do not count either
    assert Task.objects.count() == 2


def test_a_submission_refused_by_the_queue_cap_does_not_count(auth_client, user, settings):
    settings.MAX_QUEUED_TASKS_PER_USER = 1
    TaskFactory(owner=user)
    for _ in range(3):
        assert api(auth_client).status_code == 429
    assert used(auth_client) == 0


def test_an_invalid_form_over_the_rate_shows_its_field_errors(auth_client, settings):
    settings.GENERATE_RATE = "1/m"
    assert api(auth_client).status_code == 201
    response = auth_client.post(reverse("generator:create"), {**PAGE_FORM, "prompt": ""}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "Describe the picture you want." in response.content.decode()


def test_the_rate_check_and_count_wrap_only_made_tasks(rf, user, settings):
    settings.GENERATE_RATE = "2/m"
    request = rf.post("/")
    request.user = user
    rate = limits.GenerationRate(request)
    rate.check()
    rate.count()
    rate.check()
    rate.count()
    with pytest.raises(limits.RateExceeded) as refused:
        rate.check()
    assert refused.value.exceeded.reason == "generate_rate" and refused.value.exceeded.retry_after >= 1


# --- Idempotency-Key ----------------------------------------------------------------------------


def test_the_same_key_answers_with_the_same_task_and_makes_no_other(auth_client, user):
    first = api(auth_client, key="order-7")
    assert first.status_code == 201 and "Idempotent-Replayed" not in first
    again = api(auth_client, {"height": 256, "width": 256, "prompt": "a kite"}, key="order-7")  # same JSON, reordered
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.json()["task_id"] == first.json()["task_id"]
    assert Task.objects.filter(owner=user).count() == 1
    assert used(auth_client) == 1  # a replay is not another generation


def test_a_quoted_key_is_the_same_key(auth_client):
    first = api(auth_client, key="abc-1")
    assert api(auth_client, key='"abc-1"').json()["task_id"] == first.json()["task_id"]


def test_the_same_key_with_another_body_is_refused(auth_client, user):
    assert api(auth_client, key="k1").status_code == 201
    reused = api(auth_client, {**BODY, "prompt": "another kite"}, key="k1")
    assert reused.status_code == 422
    body = reused.json()
    assert body["error"] == "idempotency_key_reused" and "Idempotency-Key" in body["message"]
    assert Task.objects.filter(owner=user).count() == 1


def test_keys_belong_to_their_owner(auth_client, other_client, user, other_user):
    mine = api(auth_client, key="shared-name")
    theirs = api(other_client, {**BODY, "prompt": "theirs"}, key="shared-name")
    assert theirs.status_code == 201 and "Idempotent-Replayed" not in theirs
    assert mine.json()["task_id"] != theirs.json()["task_id"]


@pytest.mark.parametrize("key", ["", "x" * 256, "naïve", "tab\tkey"], ids=["empty", "too-long", "non-ascii", "control"])
def test_a_malformed_key_is_refused_and_makes_nothing(auth_client, key):
    response = api(auth_client, key=key)
    assert response.status_code == 400
    assert response.json()["error"] == "validation_error" and "Idempotency-Key" in response.json()["details"]
    assert not Task.objects.exists()


def test_a_key_of_255_characters_is_fine(auth_client):
    assert api(auth_client, key="k" * 255).status_code == 201


def test_an_invalid_request_does_not_use_up_its_key(auth_client):
    assert api(auth_client, {"prompt": ""}, key="k2").status_code == 400
    assert api(auth_client, key="k2").status_code == 201


def test_a_key_stands_for_24_hours_then_is_free_again(auth_client, user, monkeypatch):
    start = timezone.now()
    clock = {"now": start}
    monkeypatch.setattr(timezone, "now", lambda: clock["now"])
    first = api(auth_client, key="daily").json()["task_id"]
    clock["now"] = start + timedelta(hours=23, minutes=59)
    assert api(auth_client, key="daily").json()["task_id"] == first
    assert api(auth_client, {**BODY, "prompt": "other"}, key="daily").status_code == 422
    clock["now"] = start + timedelta(hours=24, seconds=1)
    later = api(auth_client, {**BODY, "prompt": "other"}, key="daily")
    assert later.status_code == 201 and later.json()["task_id"] != first
    assert "Idempotent-Replayed" not in later
    assert IdempotencyKey.objects.filter(owner=user).count() == 1  # the expired one was pruned
    assert Task.objects.filter(owner=user).count() == 2


def test_deleting_the_task_frees_its_key(auth_client, user):
    first = api(auth_client, key="gone").json()["task_id"]
    assert auth_client.delete(f"/api/v1/task/{first}").status_code == 204
    again = api(auth_client, key="gone")
    assert again.status_code == 201 and again.json()["task_id"] != first


def test_requests_racing_with_one_key_make_one_task(live_server, transactional_db, settings):
    settings.GENERATE_RATE = "100/m"
    user = UserFactory()
    session = api_session(live_server, user)

    def submit(_):
        response = session.post(live_server.url + GENERATE, json=BODY, headers={"Idempotency-Key": "race"}, timeout=30)
        return response.status_code, response.json()["task_id"]

    from django_q.conf import Conf

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Conf, "SYNC", False)  # queue only: the race is about the rows
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(submit, range(8)))
    assert {code for code, _task in answers} == {201}
    assert len({task for _code, task in answers}) == 1
    assert Task.objects.filter(owner=user).count() == 1
    assert IdempotencyKey.objects.filter(owner=user).count() == 1


def test_the_unique_constraint_answers_a_lost_race_with_the_winners_task(user, monkeypatch):
    """Two requests that both looked before either inserted: the insert that loses the unique
    (owner, key) constraint answers with the winner's task and leaves no task of its own."""
    from django.db import IntegrityError

    from generator import services

    winner = TaskFactory(owner=user)
    key = services.Idempotency(key="k", fingerprint="f" * 64)

    def lose_the_race(owner, task_settings, rate, idempotency, source):
        IdempotencyKey.objects.get_or_create(owner=user, key="k", defaults={"fingerprint": "f" * 64, "task": winner})
        raise IntegrityError("UNIQUE constraint failed: idempotency_owner_key")

    monkeypatch.setattr(services, "_create_task", lose_the_race)
    task, created = services.create_task_once(user, services.settings_of(winner), idempotency=key)
    assert (task.pk, created) == (winner.pk, False)
    other = services.Idempotency(key="k", fingerprint="0" * 64)
    with pytest.raises(services.IdempotencyKeyReused):
        services.create_task_once(user, services.settings_of(winner), idempotency=other)


# --- Rerun and Reuse settings ---------------------------------------------------------------------


def test_rerun_keeps_a_fixed_seed(auth_client, user):
    task = TaskFactory(owner=user, seed=77, status=Task.Status.COMPLETED)
    response = auth_client.post(reverse("generator:task_rerun", args=[task.pk]))
    new = Task.objects.exclude(pk=task.pk).get()
    assert response.status_code == 302 and response["Location"] == new.get_absolute_url()
    assert new.parameters() == task.parameters()


def test_rerun_of_a_random_seed_task_is_random_again(auth_client, user):
    task = TaskFactory(owner=user, seed=None, status=Task.Status.COMPLETED, steps=20, guidance_scale=5.0)
    auth_client.post(reverse("generator:task_rerun", args=[task.pk]))
    new = Task.objects.exclude(pk=task.pk).get()
    assert new.seed is None and (new.prompt, new.steps, new.guidance_scale) == (task.prompt, 20, 5.0)


def test_rerun_from_the_history_goes_back_to_it(auth_client, user):
    task = TaskFactory(owner=user, status=Task.Status.FAILED)
    response = auth_client.post(
        reverse("generator:task_rerun", args=[task.pk]), {"next": "/history/?status=failed"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200 and response["HX-Redirect"].startswith(reverse("generator:history"))
    assert Task.objects.filter(owner=user).count() == 2


def test_rerun_counts_against_the_rate_and_the_history_shows_the_refusal(auth_client, user, settings):
    settings.GENERATE_RATE = "1/m"
    task = TaskFactory(owner=user, status=Task.Status.COMPLETED)
    url = reverse("generator:task_rerun", args=[task.pk])
    assert auth_client.post(url).status_code == 302
    refused = auth_client.post(url, {"next": "/history/"}, HTTP_HX_REQUEST="true")
    assert refused.status_code == 429 and refused["HX-Retarget"] == "#form-problem"
    assert "faster than this server allows" in refused.content.decode()
    page = auth_client.post(url, follow=True)
    assert "faster than this server allows" in page.content.decode()
    assert Task.objects.filter(owner=user).count() == 2


def test_rerun_of_settings_no_longer_accepted_opens_the_form_to_change_them(auth_client, user):
    task = TaskFactory(owner=user, model="gone-model", status=Task.Status.COMPLETED)
    response = auth_client.post(reverse("generator:task_rerun", args=[task.pk]), follow=True)
    assert response.redirect_chain[-1][0] == f"{reverse('generator:create')}?from={task.pk}"
    assert "not accepted any more" in response.content.decode()
    assert Task.objects.count() == 1


def test_nobody_reruns_or_reuses_another_persons_task(auth_client, other_user):
    theirs = TaskFactory(owner=other_user, prompt="their secret lighthouse", status=Task.Status.COMPLETED)
    assert auth_client.post(reverse("generator:task_rerun", args=[theirs.pk])).status_code == 404
    page = auth_client.get(reverse("generator:create"), {"from": str(theirs.pk)})
    assert page.status_code == 200 and "their secret lighthouse" not in page.content.decode()
    assert "prompt" not in page.context["form"].initial
    assert Task.objects.count() == 1


def test_reuse_settings_fills_the_form_from_a_task(auth_client, user):
    task = TaskFactory(owner=user, prompt="a harbour", negative_prompt="fog", width=640, height=448, seed=5, steps=12)
    page = auth_client.get(reverse("generator:create"), {"from": str(task.pk)})
    initial = page.context["form"].initial
    assert (initial["prompt"], initial["negative_prompt"], initial["width"], initial["height"]) == (
        "a harbour",
        "fog",
        640,
        448,
    )
    assert (initial["seed"], initial["random_seed"], initial["steps"]) == (5, False, 12)
    random = TaskFactory(owner=user, seed=None)
    assert auth_client.get(reverse("generator:create"), {"from": str(random.pk)}).context["form"].initial["random_seed"]
    assert auth_client.get(reverse("generator:create"), {"from": "not-a-uuid"}).status_code == 200


def test_history_rows_and_the_task_page_offer_rerun_and_reuse(auth_client, user):
    task = TaskFactory(owner=user, status=Task.Status.COMPLETED)
    reuse = f'href="{reverse("generator:create")}?from={task.pk}"'
    rerun = f'action="{reverse("generator:task_rerun", args=[task.pk])}"'
    for url in (reverse("generator:history"), task.get_absolute_url()):
        html = auth_client.get(url).content.decode()
        assert reuse in html and rerun in html and ">Rerun</button>" in html and "Reuse settings" in html


# --- the create form's one-time token ------------------------------------------------------------


def page_token(client: Client) -> str:
    html = client.get(reverse("generator:create")).content.decode()
    return re.search(r'name="submission" id="id_submission" value="([0-9a-f]{32})"', html).group(1)


def test_the_same_form_posted_twice_makes_one_task(auth_client, user):
    form = {**PAGE_FORM, "submission": page_token(auth_client)}
    first = auth_client.post(reverse("generator:create"), form, HTTP_HX_REQUEST="true")
    again = auth_client.post(reverse("generator:create"), form, HTTP_HX_REQUEST="true")
    assert first.status_code == again.status_code == 201
    assert "HX-Reswap" not in first and again["HX-Reswap"] == "none"  # its card is already there
    assert Task.objects.filter(owner=user).count() == 1
    assert used(auth_client) == 1
    # Without JavaScript too (a browser resending the form).
    form = {**PAGE_FORM, "submission": page_token(auth_client)}
    assert [auth_client.post(reverse("generator:create"), form).status_code for _ in range(2)] == [302, 302]
    assert Task.objects.filter(owner=user).count() == 2


def test_each_task_made_brings_a_fresh_token_for_the_next_submission(auth_client, user):
    token = page_token(auth_client)
    response = auth_client.post(reverse("generator:create"), {**PAGE_FORM, "submission": token}, HTTP_HX_REQUEST="true")
    fresh = re.search(r'value="([0-9a-f]{32})" hx-swap-oob="true"', response.content.decode()).group(1)
    assert fresh != token
    assert (
        auth_client.post(
            reverse("generator:create"), {**PAGE_FORM, "submission": fresh}, HTTP_HX_REQUEST="true"
        ).status_code
        == 201
    )
    assert Task.objects.filter(owner=user).count() == 2


def test_a_token_with_other_fields_or_none_at_all_is_a_new_submission(auth_client, user):
    token = page_token(auth_client)
    assert auth_client.post(reverse("generator:create"), {**PAGE_FORM, "submission": token}).status_code == 302
    changed = {**PAGE_FORM, "prompt": "another kite", "submission": token}
    assert auth_client.post(reverse("generator:create"), changed).status_code == 302
    for _ in range(2):  # forms without a token (Vary, older pages) work as before
        assert auth_client.post(reverse("generator:create"), PAGE_FORM).status_code == 302
    assert auth_client.post(reverse("generator:create"), {**PAGE_FORM, "submission": "forged"}).status_code == 302
    assert Task.objects.filter(owner=user).count() == 5


def test_the_daily_cleanup_drops_expired_keys_and_keeps_current_ones(auth_client, user):
    from generator import jobs

    api(auth_client, key="old")
    api(auth_client, {**BODY, "prompt": "new"}, key="new")
    IdempotencyKey.objects.filter(key="old").update(created_at=timezone.now() - timedelta(hours=25))
    jobs.retention_cleanup()
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]
    assert Task.objects.filter(owner=user).count() == 2  # the tasks stay
