"""Style presets: exact application (template, negative, defaults, explicit values winning),
privacy (one's own presets, staff's for everyone), previews, the seeds and the picker."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import translation

from generator.forms import GenerateForm
from generator.models import Image, Task
from generator.services import TaskSettings
from prompts.models import Preset
from prompts.presets import apply_preset

from .factories import TaskFactory, UserFactory

GENERATE = "/api/v1/generate"
# What the create page sends when nobody touches size or model (the first model is the default).
PAGE = {"prompt": "a kite", "model": "offline:sketch-v1", "size": "", "width": "1024", "height": "1024"}
SEEDED = {
    "Photographic": "摄影",
    "Watercolour": "水彩",
    "Line art": "线稿",
    "Anime": "动漫",
    "3D render": "3D 渲染",
    "Pixel art": "像素画",
}


def settings_for(**changes) -> TaskSettings:
    base = {"prompt": "a kite", "provider": "offline", "model": "sketch-v1", "width": 1024, "height": 1024}
    return TaskSettings(**{**base, **changes})


def preset(owner=None, **fields) -> Preset:
    fields.setdefault("name", f"preset {Preset.objects.count()}")
    return Preset.objects.create(owner=owner, **fields)


@pytest.fixture
def sized(user) -> Preset:
    return preset(
        user,
        name="Postcard",
        prompt_template="postcard of {prompt}, vintage",
        negative_prompt="text, blurry",
        model="offline:sketch-v1",
        width=640,
        height=448,
        steps=12,
        guidance_scale=4.5,
    )


# --- apply_preset: exact ------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_prompt_goes_where_the_template_says_and_the_typed_prompt_is_recorded(user):
    applied = apply_preset(settings_for(), preset(user, prompt_template="{prompt} at dusk, {prompt} again"), ())
    assert applied.prompt == "a kite at dusk, a kite again"
    assert applied.original_prompt == "a kite"


@pytest.mark.django_db
def test_a_template_without_prompt_is_added_after_the_prompt(user):
    applied = apply_preset(settings_for(), preset(user, prompt_template="oil painting"), ())
    assert applied.prompt == "a kite, oil painting"


@pytest.mark.django_db
def test_a_template_of_just_prompt_changes_nothing_and_records_no_original(user):
    chosen = preset(user, name="Plain")
    applied = apply_preset(settings_for(), chosen, ())
    assert (applied.prompt, applied.original_prompt) == ("a kite", "")
    assert (applied.preset_id, applied.preset_name) == (chosen.pk, "Plain")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("own", "presets", "combined"),
    [
        ("", "text, blurry", "text, blurry"),
        ("people", "text, blurry", "people, text, blurry"),
        ("Blurry, people", "text, blurry", "Blurry, people, text"),
        ("people;  fog", "", "people;  fog"),
    ],
)
def test_the_persons_negative_comes_first_then_the_presets_new_terms(user, own, presets, combined):
    applied = apply_preset(settings_for(negative_prompt=own), preset(user, negative_prompt=presets), ())
    assert applied.negative_prompt == combined


@pytest.mark.django_db
def test_defaults_apply_only_where_the_person_set_nothing(sized):
    applied = apply_preset(settings_for(provider="other", model="m", steps=None), sized, ())
    assert (applied.provider, applied.model) == ("offline", "sketch-v1")
    assert (applied.width, applied.height, applied.steps, applied.guidance_scale) == (640, 448, 12, 4.5)
    kept = apply_preset(
        settings_for(provider="other", model="m", width=512, height=512, steps=30, guidance_scale=7.0),
        sized,
        {"provider", "model", "width", "height", "steps", "guidance_scale"},
    )
    assert (kept.provider, kept.model, kept.width, kept.height, kept.steps, kept.guidance_scale) == (
        "other",
        "m",
        512,
        512,
        30,
        7.0,
    )


@pytest.mark.django_db
def test_an_earlier_original_prompt_from_the_helper_is_kept(user):
    applied = apply_preset(settings_for(original_prompt="kite"), preset(user, prompt_template="{prompt}, ink"), ())
    assert applied.original_prompt == "kite"


# --- the form: page and API ---------------------------------------------------------------------


@pytest.mark.django_db
def test_the_page_applies_a_presets_size_when_the_size_was_left_alone(user, sized):
    form = GenerateForm({**PAGE, "preset": str(sized.pk)}, user=user)
    assert form.is_valid(), form.errors
    made = form.task_settings()
    assert (made.prompt, made.negative_prompt) == ("postcard of a kite, vintage", "text, blurry")
    assert (made.width, made.height, made.steps, made.guidance_scale) == (640, 448, 12, 4.5)
    assert (made.preset_id, made.preset_name, made.original_prompt) == (sized.pk, "Postcard", "a kite")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "typed",
    [{"width": "512", "height": "768"}, {"size": "1024x1024"}],
    ids=["width-and-height", "size-preset"],
)
def test_on_the_page_a_size_the_person_chose_wins(user, sized, typed):
    form = GenerateForm({**PAGE, **typed, "preset": str(sized.pk), "steps": "20"}, user=user)
    assert form.is_valid(), form.errors
    made = form.task_settings()
    expected = (512, 768) if "width" in typed else (1024, 1024)
    assert ((made.width, made.height), made.steps, made.guidance_scale) == (expected, 20, 4.5)


@pytest.mark.django_db
def test_the_page_posts_a_preset_and_the_task_records_it(auth_client, user, sized):
    response = auth_client.post(reverse("generator:create"), {**PAGE, "preset": sized.pk, "num_images": "1"})
    assert response.status_code == 302
    task = Task.objects.get(owner=user)
    assert (task.prompt, task.original_prompt, task.preset_id, task.preset_name) == (
        "postcard of a kite, vintage",
        "a kite",
        sized.pk,
        "Postcard",
    )
    assert (task.width, task.height) == (640, 448)


@pytest.mark.django_db
def test_the_api_fields_sent_win_and_the_task_json_names_the_preset(auth_client, user, sized):
    body = {"prompt": "a kite", "width": 512, "height": 512, "preset": sized.pk}
    response = auth_client.post(GENERATE, body, content_type="application/json")
    assert response.status_code == 201, response.content
    task = Task.objects.get(pk=response.json()["task_id"])
    assert (task.width, task.height, task.steps, task.guidance_scale) == (512, 512, 12, 4.5)
    shown = auth_client.get(reverse("api:task_detail", args=[task.pk])).json()
    assert shown["preset"] == {"id": sized.pk, "name": "Postcard"}
    assert shown["prompt"] == "postcard of a kite, vintage"


@pytest.mark.django_db
def test_the_api_without_a_size_takes_the_presets(auth_client, sized):
    response = auth_client.post(GENERATE, {"prompt": "a kite", "preset": sized.pk}, content_type="application/json")
    task = Task.objects.get(pk=response.json()["task_id"])
    assert (task.width, task.height) == (640, 448)


@pytest.mark.django_db
def test_a_preset_size_the_model_cannot_make_is_a_form_error_and_makes_nothing(auth_client, user):
    huge = preset(user, name="Huge", width=4096, height=4096)
    response = auth_client.post(reverse("generator:create"), {**PAGE, "preset": huge.pk})
    assert response.status_code == 400
    assert "The preset “Huge” does not suit these settings" in response.content.decode()
    api = auth_client.post(GENERATE, {"prompt": "a kite", "preset": huge.pk}, content_type="application/json")
    assert api.status_code == 400 and "preset" in api.json()["details"]
    assert not Task.objects.exists()


@pytest.mark.django_db
def test_a_template_that_makes_the_prompt_too_long_is_a_form_error(user):
    long = preset(user, name="Long", prompt_template="{prompt} " + "x" * 1995)
    form = GenerateForm({**PAGE, "preset": long.pk}, user=user)
    assert not form.is_valid() and "longer than 2000 characters" in str(form.errors["preset"])


# --- privacy ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_another_persons_preset_is_refused_by_the_page_and_the_api(auth_client, other_user):
    theirs = preset(other_user, name="Secret style", prompt_template="{prompt}, secret")
    response = auth_client.post(reverse("generator:create"), {**PAGE, "preset": theirs.pk})
    assert response.status_code == 400 and "No such preset." in response.content.decode()
    api = auth_client.post(GENERATE, {"prompt": "a kite", "preset": theirs.pk}, content_type="application/json")
    assert api.status_code == 400 and api.json()["details"]["preset"] == ["No such preset."]
    garbage = auth_client.post(GENERATE, {"prompt": "a kite", "preset": "x"}, content_type="application/json")
    assert garbage.status_code == 400
    assert not Task.objects.exists()


@pytest.mark.django_db
def test_the_picker_shows_ones_own_and_staffs_presets_but_not_anothers(auth_client, user, other_user):
    preset(user, name="Mine")
    preset(other_user, name="Theirs")
    page = auth_client.get(reverse("generator:create")).content.decode()
    assert "Mine" in page and "Photographic" in page and "Theirs" not in page
    listed = auth_client.get(reverse("prompts:presets")).content.decode()
    assert "Mine" in listed and "Photographic" in listed and "Theirs" not in listed
    api = auth_client.get("/api/v1/presets").json()["results"]
    owners = {entry["name"]: entry["owner"] for entry in api}
    assert owners["Mine"] == "you" and owners["Photographic"] == "staff" and "Theirs" not in owners


@pytest.mark.django_db
def test_another_persons_preset_is_a_404_on_every_presets_url(auth_client, other_user):
    theirs = preset(other_user, name="Theirs")
    for name in ("prompts:preset_edit", "prompts:preset_card"):
        assert auth_client.get(reverse(name, args=[theirs.pk])).status_code == 404
    assert auth_client.post(reverse("prompts:preset_edit", args=[theirs.pk]), {"name": "Mine now"}).status_code == 404
    assert auth_client.post(reverse("prompts:preset_delete", args=[theirs.pk])).status_code == 404
    theirs.refresh_from_db()
    assert theirs.name == "Theirs"


@pytest.mark.django_db
def test_staff_presets_are_usable_by_all_but_edited_only_in_the_admin(auth_client):
    staff = Preset.objects.get(name="Photographic")
    assert auth_client.get(reverse("prompts:preset_card", args=[staff.pk])).status_code == 200
    assert auth_client.get(reverse("prompts:preset_edit", args=[staff.pk])).status_code == 404
    assert auth_client.post(reverse("prompts:preset_delete", args=[staff.pk])).status_code == 404
    assert Preset.objects.filter(pk=staff.pk).exists()


@pytest.mark.django_db
def test_a_person_makes_edits_and_deletes_their_own_preset_and_tasks_keep_its_name(auth_client, user):
    created = auth_client.post(
        reverse("prompts:preset_create"),
        {"name": "Ink", "prompt_template": "{prompt}, ink wash", "negative_prompt": "colour", "model": ""},
    )
    assert created.status_code == 302
    ink = Preset.objects.get(owner=user, name="Ink")
    duplicate = auth_client.post(reverse("prompts:preset_create"), {"name": "ink", "prompt_template": "{prompt}"})
    assert duplicate.status_code == 400 and "already have a preset" in duplicate.content.decode()
    edited = auth_client.post(
        reverse("prompts:preset_edit", args=[ink.pk]),
        {"name": "Ink", "prompt_template": "{prompt}, sumi-e", "width": "512", "height": "", "model": ""},
    )
    assert edited.status_code == 400 and "Give both width and height" in edited.content.decode()
    auth_client.post(GENERATE, {"prompt": "a crane", "preset": ink.pk}, content_type="application/json")
    assert auth_client.post(reverse("prompts:preset_delete", args=[ink.pk])).status_code == 302
    task = Task.objects.get(owner=user)
    assert (task.preset_id, task.preset_name) == (None, "Ink")
    assert auth_client.get(reverse("api:task_detail", args=[task.pk])).json()["preset"] == {"id": None, "name": "Ink"}
    assert "Preset: Ink" in auth_client.get(reverse("generator:history")).content.decode()


# --- the preview image --------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_preview_is_one_of_ones_own_images(auth_client, user, completed_task, other_client, other_user):
    mine = completed_task.ordered_images[0]
    theirs_task = TaskFactory(owner=other_user)
    from generator.scheduler.inline import run_task

    run_task(str(theirs_task.pk))
    theirs = Image.objects.filter(owner=other_user).first()
    assert theirs is not None
    form = {"name": "Previewed", "prompt_template": "{prompt}", "model": ""}
    refused = auth_client.post(reverse("prompts:preset_create"), {**form, "preview": theirs.pk})
    assert refused.status_code == 400 and "Choose one of your own images." in refused.content.decode()
    assert auth_client.post(reverse("prompts:preset_create"), {**form, "preview": mine.pk}).status_code == 302
    made = Preset.objects.get(owner=user, name="Previewed")
    assert made.preview == mine
    card = auth_client.get(reverse("prompts:preset_card", args=[made.pk]), HTTP_HX_REQUEST="true")
    assert reverse("api:preset_preview", args=[made.pk]) in card.content.decode()
    mine.delete()
    made.refresh_from_db()
    assert made.preview is None
    assert auth_client.get(reverse("prompts:preset_card", args=[made.pk])).status_code == 200


@pytest.mark.django_db
def test_a_staff_presets_preview_shows_to_everyone_and_a_personal_ones_to_its_owner_only(
    auth_client, user, completed_task, other_client
):
    staff_image, own_image = completed_task.ordered_images[:2]
    shared = Preset.objects.create(name="House style", preview=staff_image)
    own = Preset.objects.create(owner=user, name="Mine", preview=own_image)
    shared_preview = reverse("api:preset_preview", args=[shared.pk])
    own_preview = reverse("api:preset_preview", args=[own.pk])

    answer = other_client.get(shared_preview)
    assert answer.status_code == 200 and answer["Content-Type"] == "image/webp"
    assert other_client.get(staff_image.thumbnail_url).status_code == 404  # the image itself stays private
    listed = {item["id"]: item for item in other_client.get(reverse("api:preset_list")).json()["results"]}
    assert listed[shared.pk]["preview_thumbnail_url"] == shared_preview
    assert shared_preview in other_client.get(reverse("prompts:preset_card", args=[shared.pk])).content.decode()

    assert other_client.get(own_preview).status_code == 404
    assert auth_client.get(own_preview).status_code == 200
    own.preview = None
    own.save()
    assert auth_client.get(own_preview).status_code == 404


# --- seeds, language, queries -------------------------------------------------------------------


@pytest.mark.django_db
def test_the_six_starting_presets_exist_with_english_and_chinese_names():
    seeded = dict(Preset.objects.filter(owner__isnull=True).values_list("name", "name_zh_hans"))
    assert seeded == SEEDED
    for template in Preset.objects.values_list("prompt_template", flat=True):
        assert "{prompt}" in template
    assert not Preset.objects.exclude(model="").exists()


@pytest.mark.django_db
def test_the_picker_shows_the_chinese_name_under_chinese(auth_client, user):
    auth_client.cookies["django_language"] = "zh-hans"
    with translation.override("zh-hans"):
        page = auth_client.get(reverse("generator:create"), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "水彩" in page and "Watercolour" not in page
    with translation.override("zh-hans"):
        names = [
            p["name"] for p in auth_client.get("/api/v1/presets", HTTP_ACCEPT_LANGUAGE="zh-hans").json()["results"]
        ]
    assert "像素画" in names


@pytest.mark.django_db
def test_the_create_page_costs_the_same_queries_with_0_and_20_presets(auth_client, user, django_assert_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    Preset.objects.all().delete()
    auth_client.get(reverse("generator:create"))
    with CaptureQueriesContext(connection) as none:
        auth_client.get(reverse("generator:create"))
    for number in range(20):
        preset(user if number % 2 else None, name=f"style {number}")
    with django_assert_num_queries(len(none.captured_queries)):
        page = auth_client.get(reverse("generator:create"))
    assert "style 19" in page.content.decode()


@pytest.mark.django_db
def test_the_viewer_and_task_page_show_the_preset(auth_client, user, sized):
    auth_client.post(GENERATE, {"prompt": "a kite", "preset": sized.pk}, content_type="application/json")
    task = Task.objects.get(owner=user)
    assert "Postcard" in auth_client.get(task.get_absolute_url()).content.decode()


@pytest.mark.django_db
def test_the_card_of_a_preset_says_what_it_sets(auth_client, sized):
    card = auth_client.get(reverse("prompts:preset_card", args=[sized.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert "postcard of {prompt}, vintage" in card and "640×448" in card and "<html" not in card


@pytest.mark.django_db
def test_the_admin_lists_staff_presets_and_keeps_personal_ones_read_only(client, user):
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    personal = preset(user, name="Personal")
    assert "Photographic" in client.get(reverse("admin:prompts_preset_changelist")).content.decode()
    page = client.get(reverse("admin:prompts_preset_change", args=[personal.pk])).content.decode()
    assert 'name="name"' not in page
    added = client.post(
        reverse("admin:prompts_preset_add"),
        {"name": "Staff ink", "name_zh_hans": "水墨", "prompt_template": "{prompt}, ink", "position": "7"},
    )
    assert added.status_code == 302, added.content[:2000]
    assert Preset.objects.get(name="Staff ink").owner is None
