"""Hostile input on every form and API field: a clear 4xx and nothing written, never a 500.

Legitimate unicode (CJK, 4-byte emoji, right-to-left text) is accepted and kept intact;
markup in prompts is shown as text on every page that shows a prompt.
"""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from generator.models import Task

from .factories import PASSWORD, FinishedTaskFactory, TaskFactory, UserFactory

GENERATE = "/api/v1/generate"
CREATE = "/"
VALID_FORM = {"prompt": "a boat at dusk", "model": "offline:sketch-v1", "size": "512x512", "num_images": "1"}
NUL_MESSAGE = "Null characters are not allowed."

CJK_EMOJI = "雨中的灯笼，水彩 🏮🌧️ 👩‍👩‍👧 𠜎𠜱 ‏مرحبا‏ café"
RTL_OVERRIDE = "a sign that reads \u202eolleh\u202c, photo"
XSS = """<script>alert(1)</script><img src=x onerror=alert(2)>"'><svg onload=alert(3)>{{ 7|add:7 }}"""
RAW_MARKUP = ("<script>alert(1)", "<img src=x", "<svg onload", "\"'><")


def post_json(client: Client, body, **extra):
    payload = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(GENERATE, payload, content_type="application/json", **extra)


def assert_json_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == "application/json"
    data = response.json()
    assert isinstance(data["message"], str) and data["message"]
    if code:
        assert data["error"] == code
    return data


def assert_refused_field(response, field: str) -> None:
    data = assert_json_error(response, 400, "validation_error")
    messages = data["details"][field]
    assert messages and all(isinstance(m, str) and m for m in messages)


# --- the JSON API: wrong types, field by field -------------------------------------------

STRING_FIELDS = ["prompt", "negative_prompt", "provider", "model"]
INT_FIELDS = ["width", "height", "num_images", "steps", "seed"]
NOT_A_STRING = [[], ["a"], {}, {"a": 1}, True, False, 0, 42, 10**30, -(10**30), 1.5]
NOT_AN_INT = [[], [1], {}, {"a": 1}, True, False, 1.5, 512.0, "512", "1e3", " 7 ", "", 10**30, -(10**30)]
NOT_A_NUMBER = [[], [1.5], {}, {"a": 1}, True, False, "7", "7.5", "", 10**30, 1e300, -1]


def json_cases():
    for field in STRING_FIELDS:
        for value in NOT_A_STRING:
            yield field, value
    for field in INT_FIELDS:
        for value in NOT_AN_INT:
            yield field, value
    for value in NOT_A_NUMBER:
        yield "scale", value
    yield "provider", "12"  # a numeric string is a string, but not a provider
    yield "model", "12"
    yield "prompt", None  # null is "not given", and the prompt is required


def _case_id(case) -> str:
    field, value = case
    return f"{field}={json.dumps(value)[:20]}"


@pytest.mark.parametrize(("field", "value"), list(json_cases()), ids=[_case_id(c) for c in json_cases()])
def test_api_refuses_wrong_types_per_field_and_writes_nothing(auth_client, field, value):
    body = {"prompt": "a boat", field: value}
    if field in ("width", "height"):  # the other side is valid, so the message is about this one
        body.setdefault("height" if field == "width" else "width", 512)
    response = post_json(auth_client, body)
    assert_refused_field(response, field)
    assert not Task.objects.exists()


@pytest.mark.parametrize(
    "field", ["negative_prompt", "provider", "model", "width", "height", "num_images", "steps", "scale", "seed"]
)
def test_api_null_means_not_given(auth_client, field):
    response = post_json(auth_client, {"prompt": "a boat", field: None})
    assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    ("field", "value", "stored"),
    [("prompt", "12", "12"), ("negative_prompt", "0", "0"), ("scale", 7, 7.0), ("scale", 7.5, 7.5), ("seed", 0, 0)],
)
def test_api_accepts_legitimate_edge_values(auth_client, field, value, stored):
    response = post_json(auth_client, {"prompt": "a boat", field: value})
    assert response.status_code == 201, response.content
    task = Task.objects.get(pk=response.json()["task_id"])
    assert getattr(task, {"scale": "guidance_scale"}.get(field, field)) == stored


def test_api_ignores_fields_it_does_not_know(auth_client, user, other_user):
    body = {
        "prompt": "a boat",
        "owner": other_user.pk,
        "owner_id": other_user.pk,
        "status": "completed",
        "id": str(uuid.uuid4()),
        "progress": 100,
        "attempts": 99,
        "error_code": "x",
        "__proto__": {"admin": True},
    }
    response = post_json(auth_client, body)
    assert response.status_code == 201
    task = Task.objects.get()
    assert (task.owner, task.status, task.progress, task.attempts, task.error_code) == (user, "pending", 0, 0, "")
    assert str(task.pk) != body["id"]


@pytest.mark.parametrize(
    "payload",
    [
        '{"prompt": "a", "scale": NaN}',
        '{"prompt": "a", "scale": Infinity}',
        '{"prompt": "a", "scale": -Infinity}',
        '{"prompt": "a", "seed": 1e400}',
    ],
    ids=["nan", "infinity", "minus-infinity", "float-overflow"],
)
def test_api_refuses_non_finite_numbers(auth_client, payload):
    response = post_json(auth_client, payload)
    assert response.status_code == 400
    assert response.json()["error"] == "validation_error"
    assert not Task.objects.exists()


@pytest.mark.parametrize(
    "payload",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"prompt": ' + "[" * 100_000 + "]" * 100_000 + "}",
        '{"prompt": "a", "x": ' + '{"x": ' * 50_000 + "1" + "}" * 50_000 + "}",
    ],
    ids=["deep-array", "deep-field", "deep-object"],
)
def test_api_refuses_deeply_nested_json(auth_client, payload):
    response = post_json(auth_client, payload)
    assert_json_error(response, 400, "validation_error")
    assert not Task.objects.exists()


@pytest.mark.parametrize(
    ("content_type", "payload"),
    [
        ("application/x-www-form-urlencoded", "prompt=a+boat"),
        ("text/plain", '{"prompt": "a boat"'),
        ("application/json", "\x00"),
        ("application/json", '{"prompt": "a"} trailing'),
    ],
)
def test_api_refuses_bodies_that_are_not_one_json_object(auth_client, content_type, payload):
    response = auth_client.post(GENERATE, payload, content_type=content_type)
    assert_json_error(response, 400, "validation_error")
    assert not Task.objects.exists()


# --- oversized bodies ------------------------------------------------------------------


def test_api_refuses_a_body_over_the_upload_limit_with_json(auth_client):
    body = json.dumps({"prompt": "a", "negative_prompt": "x" * django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE})
    response = post_json(auth_client, body)
    assert 400 <= response.status_code < 500 and response.status_code != 404
    assert_json_error(response, response.status_code)
    assert not Task.objects.exists()


def test_api_refuses_a_long_prompt_inside_the_limit(auth_client):
    response = post_json(auth_client, {"prompt": "x" * 100_000})
    assert_refused_field(response, "prompt")
    assert "2000" in response.json()["details"]["prompt"][0]


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_the_create_page_refuses_a_body_over_the_upload_limit(auth_client, htmx):
    data = {**VALID_FORM, "negative_prompt": "x" * django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE}
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    response = auth_client.post(CREATE, data, **headers)
    assert response.status_code == 400
    assert b"Traceback" not in response.content
    assert not Task.objects.exists()


def test_the_create_page_refuses_too_many_fields(auth_client):
    data = {**VALID_FORM, **{f"f{i}": "1" for i in range(django_settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1)}}
    response = auth_client.post(CREATE, data)
    assert response.status_code == 400
    assert not Task.objects.exists()


# --- the create page's form ------------------------------------------------------------

FORM_CASES = [
    # (field, value, expected message fragment)
    ("prompt", "x" * 2001, "Keep the prompt under 2000 characters."),
    ("prompt", "\x00", NUL_MESSAGE),
    ("prompt", "a boat\x00<script>", NUL_MESSAGE),
    ("negative_prompt", "blur\x00", NUL_MESSAGE),
    ("negative_prompt", "x" * 2001, "2000"),
    ("model", "offline:sketch-v1\x00", NUL_MESSAGE),
    ("model", "<script>alert(1)</script>:x", "Unknown provider"),
    ("model", "offline:../../etc/passwd", "has no model"),
    ("model", "x" * 5000, None),
    ("size", "512x512\x00", "Select a valid choice."),
    ("size", "99999x99999", "Width and height must be between 64 and 2048 pixels"),
    ("size", "-512x512", "Select a valid choice."),
    ("num_images", "1e3", None),
    ("num_images", "١٢", "Choose between 1 and 4 images."),  # Arabic-Indic digits: 12
    ("num_images", "9" * 5000, None),
    ("num_images", "-1", "Choose between 1 and 4 images."),
    ("steps", "0x10", None),
    ("steps", "9" * 40, None),
    ("scale", "NaN", None),
    ("scale", "1e309", None),
    ("scale", "-inf", None),
    ("seed", "9" * 30, "The seed must be between 0 and"),
    ("seed", "-99", "The seed must be between 0 and"),
    ("seed", "0x1F", "Enter a whole number for the seed"),
    ("seed", "12\x00", "Enter a whole number for the seed"),
]


@pytest.mark.parametrize(
    ("field", "value", "message"), FORM_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(FORM_CASES)]
)
@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_the_create_form_refuses_hostile_values_with_a_message(auth_client, field, value, message, htmx):
    data = {**VALID_FORM, field: value}
    if field == "seed":
        data["random_seed"] = ""
    if htmx:
        response = auth_client.post(CREATE, data, HTTP_HX_REQUEST="true")
        assert response.status_code == 200  # htmx swaps only 2xx: the form comes back in place
        assert response["HX-Retarget"] == "#generate-form"
    else:
        response = auth_client.post(CREATE, data)
        assert response.status_code == 400
    html = response.content.decode()
    assert 'class="errors"' in html or "errorlist" in html
    if message:
        assert message in html
    for raw in RAW_MARKUP:
        assert raw not in html
    assert not Task.objects.exists()


def test_the_create_form_takes_the_last_of_repeated_values(auth_client):
    response = auth_client.post(CREATE, {**VALID_FORM, "num_images": ["9", "2"]})
    assert response.status_code == 302
    assert Task.objects.get().num_images == 2


@pytest.mark.parametrize("key", ["prompt", "negative_prompt", "model", "size", "num_images", "seed"])
@pytest.mark.parametrize("value", [XSS, "%00", "%FF%FE", "%ED%A0%80", "9" * 5000, "..%2F..%2Fetc%2Fpasswd", "a&b=c"])
def test_the_create_page_survives_hostile_query_parameters(auth_client, key, value):
    """The create page pre-fills its form from the query string ("use these settings again")."""
    value = value.replace("<", "%3C").replace(">", "%3E").replace('"', "%22").replace(" ", "+")
    response = auth_client.get(f"{CREATE}?{key}={value}")
    assert response.status_code == 200
    html = response.content.decode()
    for raw in RAW_MARKUP:
        assert raw not in html


# --- keyset page tokens: ?after= on the gallery and history pages, ?cursor= in the API -------


def cursor_token(raw: str) -> str:
    """A token of the shape Atelier hands out (keyset.encode_cursor) around any text."""
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


HOSTILE_CURSORS = {
    "minus-one": "-1",
    "zero": "0",
    "word": "abc",
    "5000-digits": "9" * 5000,
    "exponent": "1e9",
    "fraction": "2.5",
    "nul": "\x00",
    "escaped-nul": "%00",
    "lone-surrogate": "%ED%A0%80",
    "markup": XSS,
    "path": "../../etc/passwd",
    "not-a-uuid": cursor_token("2026-05-20T12:00:00+00:00|not-a-uuid"),
    "naive-time": cursor_token(f"2026-05-20T12:00:00|{uuid.UUID(int=1)}"),
    "not-a-time": cursor_token(f"yesterday|{uuid.UUID(int=1)}"),
}
# Well-formed tokens whose time is valid but cannot be converted to UTC for the query.
EDGE_CURSORS = [
    pytest.param(cursor_token(f"0001-01-01T00:00:00+01:00|{uuid.UUID(int=1)}"), id="year-1-east"),
    pytest.param(cursor_token(f"9999-12-31T23:59:59-01:00|{uuid.UUID(int=1)}"), id="year-9999-west"),
]
HOSTILE_CURSOR_PARAMS = [pytest.param(value, id=name) for name, value in HOSTILE_CURSORS.items()] + EDGE_CURSORS
API_LISTS = ["api:task_list", "api:history_list", "api:image_list"]
# How each page shows a finished task's row: the gallery its image's checkbox, the history its row.
FIRST_ROW = {
    "generator:gallery": lambda task: f'name="image" value="{task.images.get().pk}"',
    "generator:history": lambda task: f'id="task-row-{task.pk}"',
}


@pytest.mark.parametrize("name", ["generator:gallery", "generator:history"])
@pytest.mark.parametrize("token", [*HOSTILE_CURSOR_PARAMS, pytest.param("", id="empty")])
def test_list_pages_read_a_hostile_after_token_as_the_first_page(auth_client, user, name, token):
    task = FinishedTaskFactory(owner=user, images__files=False)
    response = auth_client.get(reverse(name), {"after": token})
    assert response.status_code == 200
    assert FIRST_ROW[name](task) in response.content.decode()


@pytest.mark.parametrize("name", API_LISTS)
@pytest.mark.parametrize("token", HOSTILE_CURSOR_PARAMS)
def test_api_lists_refuse_a_hostile_cursor_by_name(auth_client, user, name, token):
    FinishedTaskFactory(owner=user, images__files=False)
    data = assert_json_error(auth_client.get(reverse(name), {"cursor": token}), 400, "validation_error")
    assert list(data["details"]) == ["cursor"]


@pytest.mark.parametrize("name", API_LISTS)
def test_api_lists_read_an_empty_cursor_as_the_first_page(auth_client, user, name):
    task = FinishedTaskFactory(owner=user, images__files=False)
    response = auth_client.get(reverse(name), {"cursor": ""})
    assert response.status_code == 200
    assert [row["task_id"] for row in response.json()["results"]] == [str(task.pk)]


def test_an_invisible_prompt_is_refused(auth_client):
    for prompt in ("\u200b\u200b", "\u200e\u202e\u2060", "\ufeff"):
        response = auth_client.post(CREATE, {**VALID_FORM, "prompt": prompt})
        assert response.status_code == 400
        assert "Describe the picture you want." in response.content.decode()
        assert_refused_field(post_json(auth_client, {"prompt": prompt}), "prompt")
    assert not Task.objects.exists()


# --- unicode ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", [CJK_EMOJI, RTL_OVERRIDE, "😀" * 2000], ids=["cjk-emoji", "rtl-override", "2000-emoji"]
)
@pytest.mark.parametrize("via", ["api", "page", "htmx"])
def test_legitimate_unicode_is_accepted_and_stored_intact(auth_client, user, text, via):
    negative = "模糊, 🙈"
    if via == "api":
        response = post_json(auth_client, {"prompt": text, "negative_prompt": negative})
        assert response.status_code == 201
    else:
        headers = {"HTTP_HX_REQUEST": "true"} if via == "htmx" else {}
        response = auth_client.post(CREATE, {**VALID_FORM, "prompt": text, "negative_prompt": negative}, **headers)
        assert response.status_code == (201 if via == "htmx" else 302)
    task = Task.objects.get(owner=user)
    assert (task.prompt, task.negative_prompt) == (text.strip(), negative)
    api = auth_client.get(f"/api/v1/task/{task.pk}").json()
    assert api["prompt"] == text.strip()
    assert text.strip()[:100] in auth_client.get(task.get_absolute_url()).content.decode()


def test_escaped_surrogate_pairs_are_one_emoji(auth_client):
    response = post_json(auth_client, r'{"prompt": "a lantern \ud83c\udfee"}')
    assert response.status_code == 201
    assert Task.objects.get().prompt == "a lantern 🏮"


@pytest.mark.parametrize(
    "payload",
    [r'{"prompt": "a \ud800 b"}', r'{"prompt": "a", "negative_prompt": "\udfff"}', r'{"prompt": "\udfee\ud83c"}'],
    ids=["high", "low-in-negative", "reversed-pair"],
)
def test_api_refuses_lone_surrogates_with_a_json_400(auth_client, payload):
    response = post_json(auth_client, payload)
    assert_json_error(response, 400, "validation_error")
    assert not Task.objects.exists()


@pytest.mark.parametrize("field", ["prompt", "negative_prompt", "provider", "model"])
def test_api_refuses_nul_with_a_clear_message(auth_client, field):
    body = {"prompt": "a boat", field: "a\x00b"}
    response = post_json(auth_client, body)
    assert_refused_field(response, field)
    assert NUL_MESSAGE in response.json()["details"][field]
    assert not Task.objects.exists()


def test_form_bytes_that_are_not_utf8_do_not_break_the_page(auth_client):
    response = auth_client.post(
        CREATE,
        b"prompt=a+%FF%FE+boat&model=offline%3Asketch-v1&size=512x512&num_images=1",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 302
    assert Task.objects.get().prompt == "a \ufffd\ufffd boat"


# --- markup in prompts is text on every page -------------------------------------------


@pytest.fixture
def hostile_task(user):
    from generator.scheduler.inline import run_task

    task = TaskFactory(owner=user, prompt=XSS, negative_prompt=XSS, num_images=1)
    run_task(str(task.pk))
    task.refresh_from_db()
    assert task.status == Task.Status.COMPLETED and task.prompt == XSS
    return task


@pytest.fixture
def staff_client(db):
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def assert_inert(html: str) -> None:
    for raw in RAW_MARKUP:
        assert raw not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown, as text
    assert "{{ 7|add:7 }}" in html  # and never evaluated as a template


@pytest.mark.parametrize("page", ["create", "task_detail", "task_card", "history", "gallery"])
def test_markup_in_prompts_is_inert_on_every_page(auth_client, hostile_task, page):
    args = [hostile_task.pk] if page in ("task_detail", "task_card") else []
    response = auth_client.get(reverse(f"generator:{page}", args=args))
    assert response.status_code == 200
    html = response.content.decode()
    assert_inert(html)
    if page == "gallery":  # the prompt is the thumbnail's alt text
        assert 'alt="&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;&quot;&#x27;&gt;' in html


def test_markup_in_prompts_is_inert_in_the_htmx_card_after_submitting(auth_client):
    response = auth_client.post(CREATE, {**VALID_FORM, "prompt": XSS}, HTTP_HX_REQUEST="true")
    assert response.status_code == 201
    assert_inert(response.content.decode())
    assert Task.objects.get().prompt == XSS


@pytest.mark.parametrize(
    "url",
    [
        lambda task: reverse("admin:generator_task_changelist"),
        lambda task: reverse("admin:generator_task_changelist") + "?q=%3Cscript%3E",
        lambda task: reverse("admin:generator_task_change", args=[task.pk]),
        lambda task: reverse("admin:generator_image_changelist"),
        lambda task: reverse("admin:generator_image_change", args=[task.images.get().pk]),
    ],
    ids=["task-list", "task-search", "task-change", "image-list", "image-change"],
)
def test_markup_in_prompts_is_inert_in_the_admin(staff_client, hostile_task, url):
    response = staff_client.get(url(hostile_task))
    assert response.status_code == 200
    html = response.content.decode()
    for raw in RAW_MARKUP:
        assert raw not in html


def test_markup_in_prompts_is_plain_json_in_the_api(auth_client, hostile_task):
    response = auth_client.get(f"/api/v1/task/{hostile_task.pk}")
    assert response["Content-Type"] == "application/json"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response.json()["prompt"] == XSS


# --- path tricks in ids ------------------------------------------------------------------

ID_TRICKS = [
    "..",
    "../..",
    "%2e%2e",
    "%2e%2e%2f%2e%2e",
    "..%2f..%2fetc%2fpasswd",
    "not-a-uuid",
    "0",
    "-1",
    "00000000-0000-0000-0000-00000000000",  # one digit short
    "%00",
    "{id}%00",
    "{ID}",  # the owner's own id, uppercased: not the canonical form
    "{id}.json",
    "{other}",  # another person's object
    "{id}x",
    "%7Bid%7D",
    "ü",
    "a" * 5000,
    "1" * 5000,
    "{id}" + "/.." * 20,
]
ID_ROUTES = [
    ("GET", "/tasks/{}/", "task"),
    ("GET", "/tasks/{}/card", "task"),
    ("POST", "/tasks/{}/cancel", "task"),
    ("GET", "/api/v1/task/{}", "task"),
    ("GET", "/api/v1/images/{}", "image"),
    ("GET", "/api/v1/images/{}/thumbnail", "image"),
    ("GET", "/api/v1/images/{}?download=1", "image"),
]


@pytest.fixture
def my_objects(user):
    from generator.scheduler.inline import run_task

    task = TaskFactory(owner=user)
    run_task(str(task.pk))
    return {"task": task, "image": task.images.get()}


@pytest.fixture
def others_objects(other_user):
    from generator.scheduler.inline import run_task

    task = TaskFactory(owner=other_user)
    run_task(str(task.pk))
    return {"task": task, "image": task.images.get()}


@pytest.mark.parametrize(("method", "route", "kind"), ID_ROUTES, ids=[r[1] for r in ID_ROUTES])
def test_path_tricks_in_ids_are_404_never_500(auth_client, my_objects, others_objects, method, route, kind):
    mine, other = my_objects[kind], others_objects[kind]
    statuses = {}
    for trick in ID_TRICKS:
        value = trick.format(id=mine.pk, ID=str(mine.pk).upper(), other=other.pk)
        url = route.format(value)
        response = auth_client.post(url) if method == "POST" else auth_client.get(url)
        statuses[trick[:30]] = response.status_code
        if response.status_code == 404 and route.startswith("/api/"):
            assert response["Content-Type"] == "application/json", url
            assert response.json()["error"] == "not_found"
    assert set(statuses.values()) == {404}, statuses
    # The tricks changed nothing.
    for objects in (my_objects, others_objects):
        task = Task.objects.get(pk=objects["task"].pk)
        assert task.status == Task.Status.COMPLETED
        assert objects["image"].file.storage.exists(objects["image"].file.name)


def test_cancel_does_not_redirect_off_site(auth_client, user):
    task = TaskFactory(owner=user)
    for target in ("https://evil.example/", "//evil.example/", "javascript:alert(1)", "/\\evil.example"):
        task.status = Task.Status.PENDING
        task.save(update_fields=["status"])
        response = auth_client.post(reverse("generator:task_cancel", args=[task.pk]), {"next": target})
        assert response.status_code == 302
        location = response["Location"]
        assert "evil.example" not in location and not location.startswith("javascript:"), location


# --- sign-in, sign-up and password change ---------------------------------------------

ACCOUNT_VALUES = [
    "",
    " ",
    "\x00",
    "admin\x00",
    "x" * 100_000,
    "<script>alert(1)</script>",
    "\u202eadmin",
    "🙈",
    "' OR '1'='1",
    "ad\nmin",
]


@pytest.mark.parametrize("field", ["username", "password"])
@pytest.mark.parametrize("value", ACCOUNT_VALUES, ids=[f"v{i}" for i in range(len(ACCOUNT_VALUES))])
def test_sign_in_refuses_hostile_values_with_a_message(client, user, field, value):
    data = {"username": user.username, "password": PASSWORD, field: value}
    response = client.post(reverse("login"), data)
    assert response.status_code in (200, 400)
    html = response.content.decode()
    assert 'role="alert"' in html or "errorlist" in html
    for raw in RAW_MARKUP:
        assert raw not in html
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example", "/\\evil.example", "javascript:alert(1)", "\x00/"]
)
def test_sign_in_does_not_redirect_off_site(client, user, target):
    response = client.post(reverse("login"), {"username": user.username, "password": PASSWORD, "next": target})
    assert response.status_code == 302
    assert "evil.example" not in response["Location"] and not response["Location"].startswith("javascript:")


@pytest.mark.parametrize("field", ["username", "password1", "password2"])
@pytest.mark.parametrize("value", ACCOUNT_VALUES, ids=[f"v{i}" for i in range(len(ACCOUNT_VALUES))])
def test_sign_up_refuses_hostile_values_and_creates_no_account(client, db, field, value):
    password = "a lantern in the rain 2024"
    data = {"username": "newcomer", "password1": password, "password2": password, field: value}
    response = client.post(reverse("signup"), data)
    assert response.status_code == 400
    html = response.content.decode()
    assert "errorlist" in html or 'role="alert"' in html
    for raw in RAW_MARKUP:
        assert raw not in html
    assert not get_user_model().objects.exists()


def test_sign_up_accepts_cjk_names_and_unicode_passwords_intact(client, db, settings):
    settings.SIGNUP = "open"  # signs in at once, so the redirect shows the account works
    password = "灯笼在雨中 🏮 2024"
    response = client.post(reverse("signup"), {"username": "画家", "password1": password, "password2": password})
    assert response.status_code == 302
    user = get_user_model().objects.get()
    assert user.username == "画家" and user.check_password(password)
    fresh = Client()
    assert fresh.post(reverse("login"), {"username": "画家", "password": password}).status_code == 302


@pytest.mark.parametrize("field", ["old_password", "new_password1", "new_password2"])
@pytest.mark.parametrize("value", ACCOUNT_VALUES, ids=[f"v{i}" for i in range(len(ACCOUNT_VALUES))])
def test_password_change_refuses_hostile_values_and_keeps_the_password(auth_client, user, field, value):
    new = "a brand new lantern 2025"
    data = {"old_password": PASSWORD, "new_password1": new, "new_password2": new, field: value}
    response = auth_client.post(reverse("password_change"), data)
    assert response.status_code in (200, 400)
    html = response.content.decode()
    assert "errorlist" in html
    for raw in RAW_MARKUP:
        assert raw not in html
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


@pytest.mark.parametrize("url", ["login", "signup"])
def test_account_forms_refuse_a_body_over_the_upload_limit(client, db, url):
    data = {"username": "x", "password": "y" * django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE}
    response = client.post(reverse(url), data)
    assert response.status_code == 400
    assert not get_user_model().objects.exists()


def test_password_change_refuses_a_body_over_the_upload_limit(auth_client, user):
    data = {"old_password": PASSWORD, "new_password1": "y" * django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE}
    response = auth_client.post(reverse("password_change"), data)
    assert response.status_code == 400
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


@pytest.mark.parametrize("url", ["login", "signup", "password_change"])
def test_account_forms_given_json_change_nothing(auth_client, client, user, url):
    http = auth_client if url == "password_change" else client
    body = json.dumps({"username": ["a"], "password": {"$ne": ""}, "new_password1": None})
    response = http.post(reverse(url), body, content_type="application/json")
    assert response.status_code in (200, 400)
    assert get_user_model().objects.count() == 1
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert url == "password_change" or "_auth_user_id" not in client.session


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v1/images?tag=sun%00set", "tag"),
        ("/api/v1/tasks?q=a%00b", "q"),
        ("/api/v1/history?q=%00", "q"),
        ("/api/v1/explore?q=%00", "q"),
    ],
)
def test_a_nul_in_an_api_text_filter_is_a_400_naming_it_on_every_database(auth_client, settings, url, field):
    settings.SHARING = "public"
    body = assert_json_error(auth_client.get(url), 400, "validation_error")
    assert body["details"] == {field: ["Contains a NUL character."]}


def test_a_nul_in_a_tag_name_to_remove_is_no_such_tag(auth_client, user):
    image = FinishedTaskFactory(owner=user).images.first()
    response = auth_client.delete(f"/api/v1/images/{image.pk}/tags/sun%00set")
    assert_json_error(response, 404, "not_found")
