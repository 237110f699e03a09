"""One image: its page and modal fragment, reuse and vary, favourite, delete; all owner-only."""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse

from generator.models import Image, Task
from generator.scheduler.inline import run_task

from .factories import TagFactory, TaskFactory

HTMX = {"HTTP_HX_REQUEST": "true"}
FROM_MODAL = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "image-modal"}


def detail_url(image: Image) -> str:
    return reverse("generator:image_detail", args=[image.pk])


@pytest.fixture
def task(user) -> Task:
    """A finished task with every parameter set and a size that is not one of the presets."""
    task = TaskFactory(
        owner=user,
        prompt="A lighthouse <at> dawn & gulls",
        negative_prompt='blurry, "text"',
        width=320,
        height=192,
        num_images=2,
        steps=28,
        guidance_scale=6.5,
        seed=41,
    )
    run_task(str(task.pk))
    task.refresh_from_db()
    assert task.status == Task.Status.COMPLETED
    Task.objects.filter(pk=task.pk).update(finished_at=task.started_at + timedelta(seconds=12.34))
    task.refresh_from_db()
    return task


@pytest.fixture
def image(task) -> Image:
    """The second image of the task: its seed (42) is not the task's (41)."""
    return task.ordered_images[1]


def form_fields(page: str, form_class: str) -> dict[str, str]:
    form = re.search(rf'<form[^>]*class="{form_class}"[^>]*>(.*?)</form>', page, re.DOTALL)
    assert form, f"no form .{form_class}"
    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form.group(1))
    return {name: html.unescape(value) for name, value in fields}


def test_the_page_shows_the_image_and_every_parameter(auth_client, task, image):
    assert image.seed == 42
    response = auth_client.get(detail_url(image))
    assert response.status_code == 200
    page = response.content.decode()
    assert (
        f'<img src="{image.url}" width="{image.width}" height="{image.height}" alt="A lighthouse &lt;at&gt; dawn &amp; gulls">'
        in page
    )
    for text in (
        "A lighthouse &lt;at&gt; dawn &amp; gulls",
        "blurry, &quot;text&quot;",
        "offline / sketch-v1",
        "320×192",
        "<dd>28</dd>",
        "<dd>6.5</dd>",
        '<code class="image-seed">42</code>',
        f'datetime="{image.created_at.isoformat()}"',
        "<dd>12.3 s</dd>",
        f'href="{image.download_url}"',
        "Image 2 of 2",
    ):
        assert text in page, text
    assert "<dd>41</dd>" not in page  # the task's seed is not this image's


def test_reuse_settings_opens_the_create_form_filled_in_with_this_images_seed(auth_client, task, image):
    page = auth_client.get(detail_url(image)).content.decode()
    href = html.unescape(re.search(r'<a class="image-button" href="([^"]+)">Reuse settings</a>', page).group(1))
    url = urlsplit(href)
    assert url.path == reverse("generator:create")
    # The link names the image, never the prompt: a prompt in the address reaches access logs.
    assert parse_qs(url.query) == {"reuse": [str(image.pk)]}
    response = auth_client.get(href)
    assert response.context["form"].initial == {
        "prompt": "A lighthouse <at> dawn & gulls",
        "negative_prompt": 'blurry, "text"',
        "model": "offline:sketch-v1",
        "width": 320,  # the width and height boxes; the preset select follows them in the browser
        "height": 192,
        "num_images": 2,
        "seed": 42,
        "steps": 28,
        "scale": 6.5,
        "random_seed": False,
    }
    create_page = response.content.decode()
    assert "A lighthouse &lt;at&gt; dawn &amp; gulls</textarea>" in create_page
    assert 'value="42"' in create_page


def test_reusing_another_persons_image_fills_in_nothing(other_client, image):
    response = other_client.get(reverse("generator:create"), {"reuse": str(image.pk)})
    assert response.status_code == 200
    assert "dawn &amp; gulls" not in response.content.decode() and "prompt" not in response.context["form"].initial


def test_vary_creates_a_task_with_the_same_settings_and_a_random_seed(
    auth_client, user, task, image, django_capture_on_commit_callbacks
):
    page = auth_client.get(detail_url(image)).content.decode()
    fields = form_fields(page, "image-vary")
    assert fields["random_seed"] == "on" and "seed" not in fields
    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client.post(reverse("generator:create"), fields)
    assert response.status_code == 302 and response["Location"] == reverse("generator:create")
    varied = Task.objects.filter(owner=user).exclude(pk=task.pk).get()
    same = (
        "prompt",
        "negative_prompt",
        "provider",
        "model",
        "width",
        "height",
        "num_images",
        "steps",
        "guidance_scale",
    )
    assert {name: getattr(varied, name) for name in same} == {name: getattr(task, name) for name in same}
    assert varied.seed is None  # random: the worker picks one
    assert varied.status == Task.Status.COMPLETED
    assert {i.seed for i in varied.images.all()} != {i.seed for i in task.images.all()}


def test_vary_goes_through_the_limits(auth_client, user, task, image, settings):
    settings.MAX_QUEUED_TASKS_PER_USER = 1
    TaskFactory(owner=user)  # one already waiting
    fields = form_fields(auth_client.get(detail_url(image)).content.decode(), "image-vary")
    response = auth_client.post(reverse("generator:create"), fields)
    assert response.status_code == 429
    assert Task.objects.filter(owner=user).count() == 2


def test_favourite_without_javascript_sets_the_flag_and_goes_back(auth_client, image):
    response = auth_client.post(
        reverse("generator:image_favorite", args=[image.pk]), {"favorite": "1", "next": "/gallery/?q=x"}
    )
    assert response.status_code == 302 and response["Location"] == "/gallery/?q=x"
    image.refresh_from_db()
    assert image.is_favorite
    # Posting the same wish twice (a double click, a second tab) keeps it; an off-site next is ignored.
    response = auth_client.post(
        reverse("generator:image_favorite", args=[image.pk]), {"favorite": "1", "next": "https://evil.example/"}
    )
    assert response["Location"] == detail_url(image)
    image.refresh_from_db()
    assert image.is_favorite
    auth_client.post(reverse("generator:image_favorite", args=[image.pk]), {"favorite": "0"})
    image.refresh_from_db()
    assert not image.is_favorite
    auth_client.post(reverse("generator:image_favorite", args=[image.pk]))  # no wish: a toggle
    image.refresh_from_db()
    assert image.is_favorite


def test_favourite_with_htmx_swaps_just_the_button(auth_client, image):
    page = auth_client.get(detail_url(image)).content.decode()
    assert 'aria-pressed="false"' in page
    fields = form_fields(page, "image-favorite")
    response = auth_client.post(reverse("generator:image_favorite", args=[image.pk]), fields, **HTMX)
    assert response.status_code == 200
    fragment = response.content.decode()
    assert "<html" not in fragment and fragment.lstrip().startswith(f'<form id="favorite-{image.pk}"')
    assert 'aria-pressed="true"' in fragment and 'name="favorite" value="0"' in fragment
    assert Image.objects.get(pk=image.pk).is_favorite


def test_the_modal_gets_the_panel_without_the_layout(auth_client, image):
    response = auth_client.get(detail_url(image), **FROM_MODAL)
    assert response.status_code == 200
    fragment = response.content.decode()
    assert "<html" not in fragment and "<body" not in fragment
    assert 'class="image-panel"' in fragment and '<form method="dialog"' in fragment
    assert f'src="{image.url}"' in fragment and ">42</code>" in fragment
    assert 'hx-target="#image-modal"' in fragment  # the delete step stays in the modal
    # The whole page has no Close button: there is no dialog to close.
    page = auth_client.get(detail_url(image)).content.decode()
    assert '<form method="dialog"' not in page and "<html" in page


def test_delete_asks_first_then_removes_the_rows_and_files(
    auth_client, task, image, django_capture_on_commit_callbacks
):
    kept = task.ordered_images[0]
    files = [Path(image.file.path), Path(image.thumbnail.path)]
    assert all(path.is_file() for path in files)
    response = auth_client.get(reverse("generator:image_delete", args=[image.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Delete this image?" in page and f'action="{reverse("generator:image_delete", args=[image.pk])}"' in page
    assert Image.objects.filter(pk=image.pk).exists()  # asking changes nothing

    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client.post(reverse("generator:image_delete", args=[image.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("generator:gallery")
    assert not Image.objects.filter(pk=image.pk).exists()
    assert not any(path.exists() for path in files)
    assert Path(kept.file.path).is_file() and Image.objects.filter(pk=kept.pk).exists()
    assert Task.objects.filter(pk=task.pk).exists()
    assert "The image was deleted." in auth_client.get(response["Location"]).content.decode()


def test_delete_from_the_modal_tells_the_page_which_image_went(auth_client, image, django_capture_on_commit_callbacks):
    confirm = auth_client.get(reverse("generator:image_delete", args=[image.pk]), **FROM_MODAL).content.decode()
    assert "<html" not in confirm and "Delete this image?" in confirm
    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client.post(reverse("generator:image_delete", args=[image.pk]), **FROM_MODAL)
    assert response.status_code == 200 and response.content == b""
    assert json.loads(response["HX-Trigger"]) == {"atelier:image-deleted": {"id": str(image.pk)}}
    assert not Image.objects.filter(pk=image.pk).exists()
    assert not Path(image.file.path).exists()


def test_another_persons_image_is_not_found_on_every_route(other_client, other_user, user, image):
    tag = TagFactory(owner=user, name="mine")
    image.tags.add(tag)
    their_tag = TagFactory(owner=other_user, name="theirs")
    routes = [
        ("GET", reverse("generator:image_detail", args=[image.pk])),
        ("POST", reverse("generator:image_favorite", args=[image.pk])),
        ("POST", reverse("generator:image_tag_add", args=[image.pk])),
        ("POST", reverse("generator:image_tag_remove", args=[image.pk, tag.pk])),
        ("POST", reverse("generator:image_tag_remove", args=[image.pk, their_tag.pk])),
        ("GET", reverse("generator:image_delete", args=[image.pk])),
        ("POST", reverse("generator:image_delete", args=[image.pk])),
    ]
    for method, url in routes:
        for headers in ({}, FROM_MODAL):
            send = other_client.post if method == "POST" else other_client.get
            response = send(url, {"name": "x", "favorite": "1"}, **headers)
            assert response.status_code == 404, f"{method} {url} {headers}: {response.status_code}"
    image.refresh_from_db()
    assert not image.is_favorite and list(image.tags.all()) == [tag]
    assert Path(image.file.path).is_file()


def test_my_image_with_another_persons_tag_is_not_found(auth_client, other_user, image):
    their_tag = TagFactory(owner=other_user, name="theirs")
    image.tags.add(their_tag)  # impossible through the app; the route must still refuse
    response = auth_client.post(reverse("generator:image_tag_remove", args=[image.pk, their_tag.pk]))
    assert response.status_code == 404
    assert image.tags.filter(pk=their_tag.pk).exists()


def test_a_missing_image_is_not_found(auth_client, db):
    missing = "00000000-0000-4000-8000-000000000000"
    assert auth_client.get(f"/images/{missing}/").status_code == 404
    assert auth_client.post(f"/images/{missing}/delete").status_code == 404


def test_the_page_runs_a_constant_number_of_queries(auth_client, user, image, django_assert_max_num_queries):
    image.tags.add(*TagFactory.create_batch(30, owner=user))
    with django_assert_max_num_queries(5):
        assert auth_client.get(detail_url(image)).status_code == 200


# --- the viewer: one dialog for every page's thumbnails ---------------------------------------


def test_the_viewer_panel_has_previous_next_and_the_shortcut_list(auth_client, image):
    fragment = auth_client.get(detail_url(image), **FROM_MODAL).content.decode()
    assert 'data-viewer="prev"' in fragment and 'data-viewer="next"' in fragment
    assert 'aria-keyshortcuts="ArrowLeft"' in fragment and 'aria-keyshortcuts="ArrowRight"' in fragment
    assert 'id="viewer-keys"' in fragment and "Favourite or unfavourite" in fragment
    assert f'data-image-id="{image.pk}"' in fragment
    # The image's own page has no viewer controls: it is not in a list.
    page = auth_client.get(detail_url(image)).content.decode()
    assert 'data-viewer="next"' not in page and 'id="viewer-keys"' not in page


def test_the_viewer_never_shows_another_persons_image(other_client, image):
    assert other_client.get(detail_url(image), **FROM_MODAL).status_code == 404


def test_every_page_s_thumbnails_open_the_viewer_and_fall_back_to_the_image_page(auth_client, task, image):
    """The create page, the task page, the history and the gallery use the same markup: a link to
    the image's page (not the raw file in a new tab) that the viewer opens instead."""
    pages = {
        "create": reverse("generator:create"),
        "task": task.get_absolute_url(),
        "history": reverse("generator:history"),
        "gallery": reverse("generator:gallery"),
    }
    for name, url in pages.items():
        page = auth_client.get(url).content.decode()
        for each in task.ordered_images:
            link = re.search(rf'<a [^>]*href="{detail_url(each)}"[^>]*>', page)
            assert link, (name, each.pk)
            assert "data-modal" in link.group(0) and f'data-full="{each.url}"' in link.group(0), name
            assert 'target="_blank"' not in link.group(0), name
