"""The Chinese interface is complete: every page, fragment and message a person can reach,
rendered for a browser that asks for zh-CN, shows no English of ours, and the catalogues
hold a translation for every string the code marks.

Data is Chinese here (prompts, tags, names), so any English left on a page is the app's own.
"""

from __future__ import annotations

import gettext
import re
import shutil
import subprocess
import sys
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.template.loader import render_to_string
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy

from accounts.tokens import create_token
from generator.models import Task
from generator.reasons import Reason
from generator.scheduler import steps
from generator.scheduler.inline import run_task
from prompts.models import Preset, VariantSet

from .factories import PASSWORD, TagFactory, TaskFactory, UserFactory, claimed
from .test_ownership import PARAMETERS, ROUTES, NamedValue, app_routes

BASE_DIR = Path(settings.BASE_DIR)
LOCALE_DIR = BASE_DIR / "locale" / "zh_Hans" / "LC_MESSAGES"
CHINESE = {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9,en;q=0.5"}

# Names, formats and codes that read the same in Chinese.
ALLOWED_WORDS = {
    "Atelier",
    "API",
    "PNG",
    "WebP",
    "JPEG",
    "JSON",
    "ZIP",
    "zip",
    "URL",
    "ID",
    "HTTP",
    "Bearer",
    "CSRF",
    "VolcEngine",
    "DashScope",
    "OpenAI",
    "AUTOMATIC",
    "WebUI",
    "Stable",
    "Diffusion",
    "SDXL",
    "Seedream",
    "Django",
    "Ctrl",
    "Cmd",
    "Enter",
    "Esc",
    "Shift",
    "English",
    "px",
    "UTC",
    "USD",  # ISO 4217 currency codes read the same in Chinese
    "CNY",
    "Redis",
    "PostgreSQL",
    "SQLite",
    "S3",
    "Q",
    "sha",
    "manifest",
    "json",
    "KB",
    "MB",
    "GB",
    "AI",
    "Mac",
    "MIME",
    "Control",
    "Command",
}
# Words with a digit, an underscore, a dot, a slash or an @ are codes, ids, files or addresses.
IDENTIFIER = re.compile(r"\S*[\d_./@:=#?&]\S*")
WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*[A-Za-z]|[A-Za-z]")
TEXT_ATTRIBUTES = ("title", "placeholder", "aria-label", "alt", "aria-description", "data-confirm")
SKIPPED_ELEMENTS = {"script", "style", "code", "pre", "kbd", "samp", "textarea"}
VOID_ELEMENTS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class VisibleText(HTMLParser):
    """Text a person sees or hears: text nodes, labels in attributes, button values."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.skipping: list[str] = []
        self.fragments: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in SKIPPED_ELEMENTS and tag not in VOID_ELEMENTS:
            self.skipping.append(tag)
        if self.skipping:
            return
        if tag == "img" and "/admin/img/" in (values.get("src") or ""):
            return  # Django's own admin icons: alt="True", alt="Search", not ours to translate
        self.fragments += [values[name] for name in TEXT_ATTRIBUTES if values.get(name)]
        if tag == "input" and values.get("type") in ("submit", "button", "reset") and values.get("value"):
            self.fragments.append(values["value"])

    def handle_endtag(self, tag: str) -> None:
        if self.skipping and self.skipping[-1] == tag:
            self.skipping.pop()

    def handle_data(self, data: str) -> None:
        if not self.skipping and data.strip():
            self.fragments.append(data.strip())


def english_in(html: str, data: set[str]) -> list[str]:
    """Fragments that still carry English words of the app's own."""
    parser = VisibleText()
    parser.feed(html)
    found = []
    for fragment in parser.fragments:
        text = fragment
        for value in data:
            text = text.replace(value, " ")
        text = IDENTIFIER.sub(" ", text)
        words = [word for word in WORD.findall(text) if word not in ALLOWED_WORDS]
        if words:
            found.append(fragment)
    return found


@pytest.fixture
def world(db) -> dict:
    """One person's studio in every state a page can show, with Chinese data."""
    person = UserFactory(username="李雷")
    completed = TaskFactory(owner=person, prompt="海边悬崖上的灯塔", negative_prompt="模糊", num_images=2)
    run_task(str(completed.pk))
    completed.refresh_from_db()
    assert completed.status == Task.Status.COMPLETED
    images = list(completed.ordered_images)
    landscape, sea = TagFactory(owner=person, name="风景"), TagFactory(owner=person, name="大海")
    images[0].tags.add(landscape, sea)
    images[0].is_favorite = True
    images[0].save(update_fields=["is_favorite"])
    pending = TaskFactory(owner=person, prompt="雨中的城市")
    running = TaskFactory(owner=person, prompt="雪山日出")
    claimed(running)
    running.set_progress(40)
    failed = TaskFactory(owner=person, prompt="森林里的小屋")
    claimed(failed)
    failed.mark_failed("rate_limited", Reason(gettext_lazy("The provider is busy (rate limit reached).")))
    canceled = TaskFactory(owner=person, prompt="沙漠中的绿洲")
    canceled.cancel()
    token = create_token(person, "我的脚本").token
    ink = Preset.objects.create(owner=person, name="水墨", prompt_template="{prompt}，水墨画", preview=images[0])
    clay = Preset.objects.create(owner=person, name="黏土", prompt_template="{prompt}，黏土", width=512, height=512)
    variants = VariantSet.objects.create(owner=person, mode=VariantSet.Mode.PRESETS, prompt="海边悬崖上的灯塔")
    Task.objects.filter(pk__in=[completed.pk, pending.pk]).update(variant_set=variants)
    variants.keep(completed)
    client = Client(**CHINESE)
    client.force_login(person)
    staff = UserFactory(username="管理员", is_staff=True, is_superuser=True)
    staff_client = Client(**CHINESE)
    staff_client.force_login(staff)
    return {
        "person": person,
        "client": client,
        "staff_client": staff_client,
        "objects": {
            "completed_task": completed,
            "pending_task": pending,
            "image": images[0],
            "second_image": images[1],
            "tag": landscape,
            "second_tag": sea,
            "tag_name": NamedValue(landscape.name),
            "second_tag_name": NamedValue(sea.name),
            "token": token,
            "second_token": token,
            "preset": ink,
            "second_preset": clay,
            "variant_set": variants,
            "second_variant_set": variants,
        },
        "tasks": [completed, pending, running, failed, canceled],
        "images": images,
    }


def data_of(world: dict) -> set[str]:
    """The person's own words and the ids on their things: data, not interface."""
    values = {"李雷", "管理员", "我的脚本", "水墨", "黏土", "{prompt}，水墨画", "{prompt}，黏土"}
    # What is typed as it stands in any language: a preset template's placeholder, an API field.
    values |= {"{prompt}", "“preset”"}
    # The words in the walked routes' queries (?q=lighthouse) come back in "no match" messages.
    values |= {
        query[3:] for spec in ROUTES.values() for query in spec.queries if query.startswith("?q=") and len(query) > 6
    }
    for task in world["tasks"]:
        values |= {task.prompt, task.negative_prompt, task.model, task.provider}
    for image in world["images"]:
        values |= {Path(image.file.name).name, Path(image.thumbnail.name).name}
    return {value for value in values if value}


def page_urls(world: dict) -> list[str]:
    """Every HTML page and fragment a GET reaches, with the person's own objects."""
    urls = []
    for walked in app_routes():
        spec = ROUTES[walked.name]
        if walked.route.startswith("api/") or spec.primary != "GET":
            continue
        kwargs = {name: world["objects"][PARAMETERS[name][0]].pk for name in walked.parameters}
        urls += [reverse(walked.name, kwargs=kwargs) + query for query in spec.queries]
    for task in world["tasks"]:
        urls += [reverse("generator:task_card", args=[task.pk]), reverse("generator:task_detail", args=[task.pk])]
    urls += [
        reverse("generator:history") + "?status=failed",
        reverse("generator:gallery") + "?q=没有这样的图",  # the empty result
        reverse("password_change"),
        reverse("password_change_done"),
        "/no/such/page/",
    ]
    return urls


def assert_chinese(response, data: set[str], what: str) -> list[str]:
    assert response.get("Content-Language") == "zh-hans", f"{what}: not served in Chinese"
    english = english_in(response.content.decode(), data)
    return [f"{what}: {fragment!r}" for fragment in english]


def test_every_page_and_fragment_is_chinese(world):
    client, data = world["client"], data_of(world)
    problems = []
    for url in page_urls(world):
        for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
            response = client.get(url, **headers)
            assert response.status_code in (200, 404), f"GET {url}: {response.status_code}"
            problems += assert_chinese(response, data, f"GET {url} {'(htmx)' if headers else ''}")
    assert not problems, "Untranslated English:\n" + "\n".join(sorted(set(problems)))


def test_signed_out_pages_are_chinese(world):
    client, data = Client(**CHINESE), data_of(world)
    problems = []
    for url in (reverse("login"), reverse("signup")):
        problems += assert_chinese(client.get(url), data, f"GET {url}")
    wrong = client.post(reverse("login"), {"username": "李雷", "password": "不对的密码"})
    problems += assert_chinese(wrong, data, "a wrong password")
    mismatch = client.post(
        reverse("signup"), {"username": "韩梅梅", "password1": PASSWORD, "password2": PASSWORD + "!"}
    )
    problems += assert_chinese(mismatch, data, "sign-up with passwords that differ")
    assert not problems, "Untranslated English:\n" + "\n".join(problems)


def test_form_errors_and_answers_to_actions_are_chinese(world):
    client, data, objects = world["client"], data_of(world), world["objects"]
    image, task = objects["image"], objects["completed_task"]
    hx = {"HTTP_HX_REQUEST": "true"}
    actions = {
        "an empty prompt": ("generator:create", {}, {"prompt": "", "model": "offline:sketch-v1", "size": "99x99"}),
        "a bad seed": ("generator:create", {}, {"prompt": "灯塔", "seed": "很多", "num_images": "9"}),
        "bulk delete, to confirm": ("generator:gallery_bulk", {}, {"action": "delete", "image": [image.pk]}),
        "bulk, nothing chosen": ("generator:gallery_bulk", {}, {"action": "favorite"}),
        "delete a task, to confirm": ("generator:task_delete", {"task_id": task.pk}, {}),
        "delete an image, to confirm": ("generator:image_delete", {"image_id": image.pk}, {}),
        "a tag that is too long": ("generator:image_tag_add", {"image_id": image.pk}, {"name": "长" * 200}),
        "bulk tag, no tag named": ("generator:gallery_bulk", {}, {"action": "tag", "image": [image.pk], "tag": ""}),
        "rename a tag to nothing": ("generator:tag_rename", {"tag_id": objects["tag"].pk}, {"name": ""}),
        "a new API token": ("api_token_create", {}, {"name": "夜间批处理"}),
    }
    problems = []
    for what, (name, kwargs, form) in actions.items():
        for headers in ({}, hx):
            response = client.post(reverse(name, kwargs=kwargs), form, follow=not headers, **headers)
            assert response.status_code < 500, f"{what}: {response.status_code}"
            problems += assert_chinese(response, data | {"夜间批处理"}, what)
    assert not problems, "Untranslated English:\n" + "\n".join(sorted(set(problems)))


def test_too_many_tasks_is_said_in_chinese(world, settings):
    settings.MAX_QUEUED_TASKS_PER_USER = 1  # the waiting (pending) task already reaches it
    client, data = world["client"], data_of(world)
    form = {"prompt": "又一座灯塔", "model": "offline:sketch-v1", "size": "256x256", "num_images": "1"}
    response = client.post(reverse("generator:create"), form, HTTP_HX_REQUEST="true")
    assert response.status_code == 429
    problems = assert_chinese(response, data, "the queued-task cap")
    body = {"prompt": "又一座灯塔", "provider": "offline", "model": "sketch-v1", "width": 256, "height": 256}
    api = client.post(reverse("api:generate"), body, content_type="application/json", **CHINESE)
    assert api.status_code == 429
    message = api.json()["message"]
    assert not english_in(f"<p>{message}</p>", data), f"API 429 message is English: {message!r}"
    assert not problems, "Untranslated English:\n" + "\n".join(problems)


def test_staff_pages_are_chinese(world):
    client, data = world["staff_client"], data_of(world) | {"管理员"}
    task, image = world["objects"]["completed_task"], world["objects"]["image"]
    urls = [
        reverse("admin:index"),
        reverse("admin:generator_task_changelist"),
        reverse("admin:generator_task_change", args=[task.pk]),
        reverse("admin:generator_image_changelist"),
        reverse("admin:generator_image_change", args=[image.pk]),
        reverse("admin:generator_tag_changelist"),
        reverse("admin:generator_overview"),
    ]
    problems = []
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, f"GET {url}: {response.status_code}"
        problems += assert_chinese(response, data, f"GET {url}")
    assert not problems, "Untranslated English:\n" + "\n".join(sorted(set(problems)))


def test_what_the_scheduler_says_about_a_task_is_chinese(world):
    """A retry's next attempt, a vendor job being watched, a partial result's note and a
    failover, on the card, the task page, the history and the staff's task page."""
    person, client = world["person"], world["client"]
    retrying = claimed(TaskFactory(owner=person, prompt="夜晚的港口"))
    busy = Reason(gettext_lazy("The provider is busy (rate limit reached)."))
    again = Reason(steps.RETRYING, {"reason": busy, "delay": "8", "attempt": 1, "attempts": 3})
    retrying.mark_retrying("rate_limited", again, timezone.now() + timedelta(seconds=8))
    watching = claimed(TaskFactory(owner=person, prompt="秋天的稻田"))
    watching.watch_job({"state": {"id": "job-1"}}, timezone.now() + timedelta(seconds=3), progress=20)
    moved = claimed(TaskFactory(owner=person, prompt="冬日的湖面", provider="dashscope", model="wanx2.1-t2i-turbo"))
    moved_from = {
        "provider": "dashscope",
        "model": "wanx2.1-t2i-turbo",
        "code": "rate_limited",
        "reason": busy.as_json(),
    }
    moved.move_to("offline", "sketch-v1", {}, moved_from)
    claimed(moved).mark_completed(note=Reason(steps.PARTIAL, {"failed": 1, "wanted": 2}))
    data = data_of(world) | {task.prompt for task in (retrying, watching, moved)} | {"dashscope", "wanx2.1-t2i-turbo"}
    problems = []
    for task in (retrying, watching, moved):
        for url in (reverse("generator:task_card", args=[task.pk]), reverse("generator:task_detail", args=[task.pk])):
            problems += assert_chinese(client.get(url), data, f"GET {url}")
    history = client.get(reverse("generator:history"))
    html = history.content.decode()
    assert "下次尝试时间" in html and "正在服务商处生成" in html and "先尝试了dashscope" in html
    problems += assert_chinese(history, data, "the history")
    staff = world["staff_client"]
    for task in (watching, moved):
        url = reverse("admin:generator_task_change", args=[task.pk])
        problems += assert_chinese(staff.get(url), data | {"管理员", "state", "job-1"}, f"GET {url}")
    assert not problems, "Untranslated English:\n" + "\n".join(sorted(set(problems)))


def test_the_error_page_is_chinese():
    with translation.override("zh-hans"):
        html = render_to_string("500.html")
    assert not english_in(html, set()), english_in(html, set())


def test_the_language_follows_the_browser_and_the_switcher(world):
    english = Client(HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.9")
    assert english.get(reverse("login"))["Content-Language"] == "en"
    for browser in ("zh-CN", "zh-Hans", "zh-SG", "zh"):
        assert Client(HTTP_ACCEPT_LANGUAGE=browser).get(reverse("login"))["Content-Language"] == "zh-hans", browser
    # The switcher's choice wins over the browser and lasts.
    response = english.post(reverse("set_language"), {"language": "zh-hans", "next": reverse("login")})
    assert response.status_code == 302 and response["Location"] == reverse("login")
    page = english.get(reverse("login"))
    assert page["Content-Language"] == "zh-hans"
    assert 'lang="zh-hans"' in page.content.decode()
    back = english.post(reverse("set_language"), {"language": "en", "next": reverse("login")})
    assert back.status_code == 302 and english.get(reverse("login"))["Content-Language"] == "en"


def test_the_switcher_refuses_an_outside_next(world):
    client = Client()
    response = client.post(reverse("set_language"), {"language": "zh-hans", "next": "https://evil.example/"})
    assert response.status_code == 302 and not response["Location"].startswith("https://evil.example")


def test_the_switcher_is_on_every_page(world):
    page = world["client"].get(reverse("generator:gallery")).content.decode()
    assert f'action="{reverse("set_language")}"' in page and "简体中文" in page and "English" in page


def test_dates_are_written_the_chinese_way(world):
    task = world["objects"]["completed_task"]
    page = world["client"].get(reverse("generator:task_detail", args=[task.pk])).content.decode()
    local = translation.override("zh-hans")
    with local:
        from django.utils import dateformat, formats, timezone

        created = timezone.localtime(task.created_at)
        expected = dateformat.format(created, formats.get_format("DATE_FORMAT"))
    assert "年" in expected and expected in page


# --- the catalogues -----------------------------------------------------------------------


def msgfmt_statistics(po: Path, tmp_path: Path) -> str:
    result = subprocess.run(
        ["msgfmt", "--check", "--statistics", "-o", str(tmp_path / (po.stem + ".mo")), str(po)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stderr


@pytest.mark.subprocess
@pytest.mark.parametrize("domain", ["django", "djangojs"])
def test_the_catalogue_is_complete_and_compiled(domain, tmp_path):
    if not shutil.which("msgfmt"):
        pytest.fail("msgfmt (Debian package gettext) is needed to check the translations")
    po, mo = LOCALE_DIR / f"{domain}.po", LOCALE_DIR / f"{domain}.mo"
    assert po.is_file() and mo.is_file(), f"{po} and {mo} must be committed"
    statistics = msgfmt_statistics(po, tmp_path)
    assert "untranslated" not in statistics and "fuzzy" not in statistics, statistics
    with open(tmp_path / f"{domain}.mo", "rb") as fresh, open(mo, "rb") as committed:
        assert gettext.GNUTranslations(fresh)._catalog == gettext.GNUTranslations(committed)._catalog, (
            f"{mo.name} is older than {po.name}: run `python manage.py compilemessages`"
        )


@pytest.mark.subprocess
def test_every_marked_string_is_in_the_catalogue(tmp_path):
    """Extract the strings again from a copy of the source: none may be missing or new."""
    if not shutil.which("xgettext"):
        pytest.fail("xgettext (Debian package gettext) is needed to check the translations")
    copy = tmp_path / "src"
    for name in (
        "accounts",
        "config",
        "generator",
        "usage",
        "gateway",
        "sharing",
        "prompts",
        "audit",
        "templates",
        "static",
        "locale",
    ):
        shutil.copytree(BASE_DIR / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(BASE_DIR / "manage.py", copy / "manage.py")
    for domain in ("django", "djangojs"):
        subprocess.run(
            [
                sys.executable,
                "manage.py",
                "makemessages",
                "-l",
                "zh_Hans",
                "-d",
                domain,
                "--no-obsolete",
                "--no-location",
            ],
            cwd=copy,
            check=True,
            capture_output=True,
            env={**_env(), "DJANGO_SETTINGS_MODULE": "config.settings"},
        )
        statistics = msgfmt_statistics(copy / "locale" / "zh_Hans" / "LC_MESSAGES" / f"{domain}.po", tmp_path)
        assert "untranslated" not in statistics and "fuzzy" not in statistics, (
            f"{domain}: strings marked in the code are missing from the catalogue ({statistics.strip()}); "
            "run `python manage.py makemessages -l zh_Hans` and translate them"
        )


def _env() -> dict:
    import os

    return {key: value for key, value in os.environ.items() if not key.startswith("DJANGO_")}
