"""Variant sets: one submission makes 2 to 6 sibling tasks of one idea (the same prompt under
several presets, or rewrites by the prompt helper), made whole or refused whole against the cap
on waiting tasks, the rate and the quotas; shown side by side, grouped in the history, and one
of them kept.

prompts.presets.apply_preset and prompts.helper.rewrites are built on other branches: every
test here replaces them with the simple stand-ins below (monkeypatch), so these tests hold
before and after they are merged.
"""

from __future__ import annotations

import concurrent.futures

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from generator.models import Tag, Task
from generator.scheduler.inline import run_task
from prompts import helper
from prompts.models import Preset, VariantSet
from usage.models import QuotaRefusal

from .factories import TaskFactory, UserFactory
from .test_limits import api_session

VARIANTS = "/api/v1/variants"
PAGE_FORM = {"prompt": "a kite", "model": "offline:sketch-v1", "num_images": "1", "width": "256", "height": "256"}
BODY = {"prompt": "a kite", "width": 256, "height": 256}
HTMX = {"HTTP_HX_REQUEST": "true"}
pytestmark = pytest.mark.usefixtures("ratelimit_clock")


def stand_in_rewrites(prompt, count):
    """Stand-in for prompts.helper.rewrites (the LLM itself is tested in test_prompt_helper.py
    against a chat-completions server): `count` numbered rewrites."""
    return helper.Rewrites(original=prompt, prompts=[f"{prompt}, take {n}" for n in range(1, count + 1)])


def helper_off(prompt, count):
    """Stand-in for prompts.helper.rewrites falling back (as with the helper switched off)."""
    return helper.Rewrites(original=prompt, fallback_reason="The prompt helper is switched off on this server.")


@pytest.fixture(autouse=True)
def stand_ins(monkeypatch):
    monkeypatch.setattr(helper, "rewrites", stand_in_rewrites)


@pytest.fixture
def styles(user, other_user) -> list[Preset]:
    """Two staff presets and two of the person's own (and one of someone else's, not theirs)."""
    Preset.objects.create(owner=other_user, name="Someone else's", prompt_template="{prompt}, secret")
    return [
        Preset.objects.create(name="Wet ink", prompt_template="{prompt}, watercolour", position=1),
        Preset.objects.create(name="Ink", prompt_template="ink drawing of {prompt}", position=2),
        Preset.objects.create(owner=user, name="Neon", prompt_template="{prompt}, neon", position=3),
        Preset.objects.create(owner=user, name="Clay", prompt_template="{prompt} in clay", position=4),
    ]


def page_variants(client, chosen: list[Preset] | None = None, count: int = 4, **headers):
    mode = {"variant_mode": "presets", "variant_presets": [p.pk for p in chosen]} if chosen is not None else {}
    data = {**PAGE_FORM, **(mode or {"variant_mode": "rewrites", "variant_count": str(count)})}
    return client.post(reverse("prompts:variant_create"), data, **headers)


def api_variants(client, **extra):
    return client.post(VARIANTS, {**BODY, **extra}, content_type="application/json")


def nothing_made(user, tasks_before: int = 0) -> bool:
    return not VariantSet.objects.exists() and Task.objects.filter(owner=user).count() == tasks_before


def used_rate(client) -> int:
    return client.get("/api/v1/system/info").json()["limits"]["generate_rate"]["used"]


# --- refused whole ------------------------------------------------------------------------------


def test_a_set_of_four_with_room_for_three_is_refused_whole_with_a_clear_message(auth_client, user, settings):
    settings.MAX_QUEUED_TASKS_PER_USER = 10
    TaskFactory.create_batch(7, owner=user)
    message = "These 4 variants would be 4 tasks waiting to run, but there is room for only 3 more"

    page = page_variants(auth_client)
    assert page.status_code == 429 and message in page.content.decode()
    in_place = page_variants(auth_client, **HTMX)
    assert in_place.status_code == 429 and in_place["HX-Retarget"] == "#form-problem"
    assert message in in_place.content.decode()
    api = api_variants(auth_client, rewrites=4)
    assert api.status_code == 429 and api.json()["reason"] == "too_many_queued_tasks"
    assert message in api.json()["message"]

    assert nothing_made(user, tasks_before=7)
    assert used_rate(auth_client) == 0
    assert api_variants(auth_client, rewrites=3).status_code == 201  # what fits is made
    assert Task.objects.filter(owner=user).count() == 10


def test_a_set_over_the_rate_is_refused_whole_and_counts_nothing(auth_client, user, settings):
    settings.GENERATE_RATE = "3/m"
    refused = api_variants(auth_client, rewrites=4)
    assert refused.status_code == 429 and refused.json()["reason"] == "generate_rate"
    assert "only 3 more tasks" in refused.json()["message"]
    page = page_variants(auth_client, count=4, **HTMX)
    assert page.status_code == 429 and "Choose fewer variants" in page.content.decode()
    assert nothing_made(user) and used_rate(auth_client) == 0
    assert api_variants(auth_client, rewrites=3).status_code == 201
    assert used_rate(auth_client) == 3  # each task of the set counts
    assert api_variants(auth_client, rewrites=2).status_code == 429


def test_a_set_over_a_quota_is_refused_whole_counting_all_its_images(auth_client, user, settings):
    settings.QUOTA_IMAGES_PER_DAY = 5
    TaskFactory(owner=user, num_images=2)
    # 2 sets' tasks of 2 images each: 4 more would make 6, past 5, though each task alone fits.
    refused = api_variants(auth_client, rewrites=2, num_images=2)
    assert refused.status_code == 429 and refused.json()["reason"] == "quota_exceeded"
    assert "5 images per day" in refused.json()["message"] and refused.json()["resets_at"]
    page = page_variants(auth_client, count=4)
    assert page.status_code == 429 and "5 images per day" in page.content.decode()
    assert nothing_made(user, tasks_before=1)
    assert QuotaRefusal.objects.filter(owner=user).count() == 2
    assert api_variants(auth_client, rewrites=3).status_code == 201  # 2 + 3 = 5: fits


@pytest.mark.parametrize("count", [1, 7])
def test_fewer_than_two_or_more_than_six_variants_is_a_form_error(auth_client, user, styles, count):
    chosen = (styles * 2)[:count] if count <= len(styles) else None
    if chosen is not None:
        page = page_variants(auth_client, chosen)
        assert (
            page.status_code == 400 and "Choose 2 to 6 presets for the variants (you chose 1)" in page.content.decode()
        )
    page = page_variants(auth_client, count=count)
    assert page.status_code == 400 and "Choose 2 to 6 variants." in page.content.decode()
    api = api_variants(auth_client, rewrites=count)
    assert api.status_code == 400 and api.json()["details"]["rewrites"] == ["Ask for 2 to 6 rewrites."]
    api = api_variants(auth_client, presets=[p.pk for p in (styles * 2)][:count])
    assert api.status_code == 400 and "presets" in api.json()["details"]
    assert nothing_made(user)


def test_presets_that_are_not_yours_or_both_modes_at_once_are_refused(auth_client, user, styles):
    theirs = Preset.objects.get(name="Someone else's")
    api = api_variants(auth_client, presets=[styles[0].pk, theirs.pk])
    assert api.status_code == 400 and api.json()["details"]["presets"] == [f"No such preset: {theirs.pk}."]
    page = page_variants(auth_client, [styles[0], theirs])
    assert page.status_code == 400 and "One of the chosen presets no longer exists" in page.content.decode()
    both = api_variants(auth_client, presets=[styles[0].pk, styles[1].pk], rewrites=2)
    assert both.status_code == 400 and "presets" in both.json()["details"]
    assert nothing_made(user)


def test_a_preset_id_past_what_the_database_holds_is_no_such_preset(auth_client, user, styles):
    # schemathesis found this one: SQLite refused the number and the API answered 500
    huge = 2**64
    api = api_variants(auth_client, presets=[styles[0].pk, huge])
    assert api.status_code == 400 and api.json()["details"]["presets"] == [f"No such preset: {huge}."]
    assert nothing_made(user)


def test_an_unavailable_prompt_helper_refuses_surprise_me_with_its_reason(auth_client, user, monkeypatch):
    monkeypatch.setattr(helper, "rewrites", helper_off)
    reason = "The prompt helper is switched off on this server."
    page = page_variants(auth_client, count=3)
    assert page.status_code == 503 and reason in page.content.decode()
    in_place = page_variants(auth_client, count=3, **HTMX)
    assert in_place["HX-Retarget"] == "#generate-form" and reason in in_place.content.decode()
    api = api_variants(auth_client, rewrites=3)
    assert api.status_code == 503 and api.json() == {"error": "prompt_helper_unavailable", "message": reason}
    assert nothing_made(user) and used_rate(auth_client) == 0


def test_surprise_me_counts_against_the_prompt_helpers_rate_and_is_refused_whole_past_it(
    auth_client, user, settings, ratelimit_clock
):
    settings.PROMPT_LLM_BASE_URL, settings.PROMPT_LLM_MODEL = "http://127.0.0.1:9/v1", "qwen-plus"
    settings.PROMPT_LLM_RATE = "1/m"
    ratelimit_clock.stop_before_window_end(str(user.pk), 60, 30)
    assert api_variants(auth_client, rewrites=2).status_code == 201
    refused = api_variants(auth_client, rewrites=2)
    assert refused.status_code == 429 and refused.json()["reason"] == "prompt_helper_rate"
    in_place = page_variants(auth_client, count=2, **HTMX)
    assert "faster than this server allows" in in_place.content.decode()
    assert VariantSet.objects.count() == 1 and Task.objects.filter(owner=user).count() == 2


# --- made whole ---------------------------------------------------------------------------------


def test_presets_mode_makes_one_task_per_preset_and_shows_them_side_by_side(auth_client, user, styles):
    response = page_variants(auth_client, styles[:3])
    variant_set = VariantSet.objects.get(owner=user)
    assert response.status_code == 302 and response["Location"] == variant_set.get_absolute_url()
    tasks = list(variant_set.tasks.order_by("created_at"))
    assert [task.prompt for task in tasks] == ["a kite, watercolour", "ink drawing of a kite", "a kite, neon"]
    assert [task.preset_name for task in tasks] == ["Wet ink", "Ink", "Neon"]
    assert {task.original_prompt for task in tasks} == {"a kite"}
    assert (variant_set.mode, variant_set.prompt) == (VariantSet.Mode.PRESETS, "a kite")
    page = auth_client.get(variant_set.get_absolute_url()).content.decode()
    assert page.count('class="task-card') == 3 and "ink drawing of a kite" in page

    answer = page_variants(auth_client, styles[2:], **HTMX)
    assert answer.status_code == 201
    html = answer.content.decode()
    newest = VariantSet.objects.filter(owner=user).first()
    assert f'id="variant-set-{newest.pk}"' in html and html.count('class="task-card') == 2
    assert "Variant set of 2" in html


def test_rewrites_mode_makes_the_helpers_prompts_with_the_idea_as_original(auth_client, user):
    response = api_variants(auth_client, rewrites=4, negative_prompt="blur")
    assert response.status_code == 201
    body = response.json()
    assert body["mode"] == "rewrites" and body["prompt"] == "a kite" and body["kept_task_id"] is None
    assert [task["prompt"] for task in body["tasks"]] == [f"a kite, take {n}" for n in range(1, 5)]
    tasks = Task.objects.filter(variant_set_id=body["variant_set_id"])
    assert {(task.original_prompt, task.negative_prompt, task.source) for task in tasks} == {("a kite", "blur", "api")}
    assert auth_client.get(f"{VARIANTS}/{body['variant_set_id']}").json() == body


# --- at once ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_sets_of_four_at_once_with_room_for_six_make_exactly_one(live_server, settings):
    settings.MAX_QUEUED_TASKS_PER_USER = 6
    settings.GENERATE_RATE = "100/m"
    user = UserFactory()
    session = api_session(live_server, user)

    def submit(_):
        return session.post(live_server.url + VARIANTS, json={**BODY, "rewrites": 4}, timeout=60).status_code

    from django_q.conf import Conf

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Conf, "SYNC", False)  # queue them; no worker runs, so they stay waiting
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            codes = list(pool.map(submit, range(2)))
    assert sorted(codes) == [201, 429]
    assert VariantSet.objects.filter(owner=user).count() == 1
    assert Task.objects.filter(owner=user).count() == 4
    assert Task.objects.filter(owner=user, variant_set__isnull=True).count() == 0


# --- keeping one --------------------------------------------------------------------------------


@pytest.fixture
def finished_set(auth_client, user) -> VariantSet:
    body = api_variants(auth_client, rewrites=3).json()
    for task in body["tasks"]:
        run_task(task["task_id"])
    return VariantSet.objects.get(pk=body["variant_set_id"])


def kept_images(user) -> set:
    tag = Tag.objects.filter(owner=user, name="kept").first()
    return set(tag.images.values_list("task_id", flat=True)) if tag else set()


def test_keep_this_one_marks_it_and_tags_its_images_kept_and_the_tag_moves(auth_client, user, finished_set):
    first, second, _third = finished_set.tasks.order_by("created_at")
    keep = reverse("prompts:variant_keep", args=[finished_set.pk, first.pk])
    assert "Keep this one" in auth_client.get(finished_set.get_absolute_url()).content.decode()
    answer = auth_client.post(keep, **HTMX)
    assert answer.status_code == 200 and "Kept" in answer.content.decode()
    assert answer.content.decode().count('hx-swap-oob="true"') == 2  # the siblings' buttons
    finished_set.refresh_from_db()
    assert finished_set.kept == first and kept_images(user) == {first.pk}

    changed = auth_client.post(f"{VARIANTS}/{finished_set.pk}/keep", {"task_id": str(second.pk)}, "application/json")
    assert changed.status_code == 200 and changed.json()["kept_task_id"] == str(second.pk)
    assert kept_images(user) == {second.pk}  # moved: the gallery's "kept" shows the chosen one
    assert auth_client.post(keep).status_code == 302  # without JavaScript: back to the set
    history = auth_client.get(reverse("generator:history")).content.decode()
    assert history.count("One of a variant set of 3") == 3 and history.count("· kept") == 1


def test_keeping_in_another_persons_set_or_a_task_outside_the_set_is_404(
    auth_client, other_client, user, finished_set, completed_task
):
    task = finished_set.tasks.first()
    assert other_client.post(reverse("prompts:variant_keep", args=[finished_set.pk, task.pk])).status_code == 404
    assert (
        other_client.post(
            f"{VARIANTS}/{finished_set.pk}/keep", {"task_id": str(task.pk)}, "application/json"
        ).status_code
        == 404
    )
    assert other_client.get(finished_set.get_absolute_url()).status_code == 404
    outside = reverse("prompts:variant_keep", args=[finished_set.pk, completed_task.pk])
    assert auth_client.post(outside).status_code == 404
    api = auth_client.post(
        f"{VARIANTS}/{finished_set.pk}/keep", {"task_id": str(completed_task.pk)}, "application/json"
    )
    assert api.status_code == 404
    finished_set.refresh_from_db()
    assert finished_set.kept is None and kept_images(user) == set()


def test_a_variant_still_waiting_cannot_be_kept(auth_client, user):
    body = api_variants(auth_client, rewrites=2).json()
    waiting = body["tasks"][0]["task_id"]
    page = auth_client.post(reverse("prompts:variant_keep", args=[body["variant_set_id"], waiting]))
    assert page.status_code == 409 and "Only a finished variant with pictures can be kept." in page.content.decode()
    api = auth_client.post(f"{VARIANTS}/{body['variant_set_id']}/keep", {"task_id": waiting}, "application/json")
    assert api.status_code == 409 and api.json()["error"] == "not_completed"
    assert VariantSet.objects.get().kept is None


# --- the history --------------------------------------------------------------------------------


def test_the_history_groups_a_set_without_costing_queries(auth_client, user):
    TaskFactory.create_batch(4, owner=user)
    with CaptureQueriesContext(connection) as plain:
        auth_client.get(reverse("generator:history"))
    api_variants(auth_client, rewrites=4)
    TaskFactory.create_batch(4, owner=user)
    with CaptureQueriesContext(connection) as grouped:
        html = auth_client.get(reverse("generator:history")).content.decode()
    assert len(grouped.captured_queries) == len(plain.captured_queries)
    variant_set = VariantSet.objects.get()
    assert html.count(f'href="{variant_set.get_absolute_url()}"') == 4
    assert html.count("One of a variant set of 4") == 4


def test_the_create_form_offers_the_persons_presets_and_make_variants_without_javascript(auth_client, styles):
    html = auth_client.get(reverse("generator:create")).content.decode()
    for preset in styles:
        assert f'name="variant_presets" value="{preset.pk}"' in html
    assert "Someone else's" not in html
    assert f'formaction="{reverse("prompts:variant_create")}"' in html
    # Enter in a field still means Generate: the form's first submit control has no formaction.
    first_submit = html.index('type="submit"', html.index('id="generate-form"'))
    assert "formaction" not in html[first_submit : html.index(">", first_submit)]
