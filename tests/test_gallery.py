"""The gallery: filters, keyset pages, bulk actions, the streamed zip, and constant query counts."""

from __future__ import annotations

import io
import json
import tracemalloc
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from PIL import Image as PILImage

from generator import services
from generator.lib.keyset import decode_cursor, encode_cursor
from generator.lib.zipstream import ZipMember, stream_zip
from generator.models import Image, Tag, Task
from generator.views.gallery import EAGER_THUMBNAILS, PAGE_SIZE

from .conftest import client_for
from .factories import ImageFactory, TagFactory

GALLERY = reverse("generator:gallery")
BULK = reverse("generator:gallery_bulk")
DOWNLOAD = reverse("generator:gallery_download")
NOW = datetime(2026, 5, 20, 12, 0, tzinfo=UTC)


def ids_on(response) -> list[str]:
    """Image ids shown, in order (the checkbox values of the grid)."""
    html = response.content.decode()
    return [part.split('"', 1)[0] for part in html.split('name="image" value="')[1:]]


def next_link(response) -> str | None:
    html = response.content.decode()
    if 'rel="next"' not in html:
        return None
    href = html.split('rel="next"')[0].rsplit('href="', 1)[1].split('"', 1)[0]
    return href.replace("&amp;", "&")


def messages_of(response) -> list[str]:
    """The messages this response added (earlier unread ones are not counted)."""
    storage = get_messages(response.wsgi_request)
    return [str(message) for message in storage._queued_messages]


def post_bulk(client, action: str, images, **extra):
    data = {"action": action, "image": [str(getattr(image, "pk", image)) for image in images], **extra}
    return client.post(BULK, data)


# --- the page and its empty states ----------------------------------------------------------


def test_an_empty_gallery_says_how_to_make_images(auth_client):
    response = auth_client.get(GALLERY)
    assert response.status_code == 200
    assert "Your gallery is empty" in response.content.decode()
    assert f'href="{reverse("generator:create")}"' in response.content.decode()
    assert 'role="search"' not in response.content.decode()


def test_each_grid_item_has_a_checkbox_a_viewer_link_and_a_star(auth_client, user):
    favourite, _plain = ImageFactory.bulk_create_batch(2, owner=user, task__prompt="a <b>bold</b> heron")
    Image.objects.filter(pk=favourite.pk).update(is_favorite=True)
    html = auth_client.get(GALLERY).content.decode()
    detail = reverse("generator:image_detail", args=[favourite.pk])
    assert f'<a class="gallery-thumb" href="{detail}" data-modal data-full="{favourite.url}">' in html
    assert f'data-w="{favourite.width}" data-h="{favourite.height}"' in html
    assert html.count("Select image") == 2
    assert html.count('class="gallery-star"') == 1
    assert 'width="256" height="192"' in html
    assert 'alt="a &lt;b&gt;bold&lt;/b&gt; heron"' in html and "<b>bold" not in html
    assert f'src="{favourite.thumbnail_url}"' in html


def test_offline_sketches_are_named_once_above_the_grid_not_on_each_tile(auth_client, user):
    ImageFactory.bulk_create_batch(5, owner=user)
    html = auth_client.get(GALLERY).content.decode()
    assert html.count("badge-sketch") == 1
    note = html.split('id="gallery-sketch-note"')[1].split("</p>")[0]
    assert "hidden" not in note.split(">")[0] and "not by an AI model" in note


def test_no_sketch_note_for_other_providers(auth_client, user):
    ImageFactory.bulk_create_batch(1, owner=user, task__provider="openai_compatible", task__model="dall-e-3")
    html = auth_client.get(GALLERY).content.decode()
    assert 'id="gallery-sketch-note" class="gallery-sketch-note" hidden' in html


def test_a_later_page_that_brings_the_first_sketch_shows_the_note_out_of_band(auth_client, user):
    ImageFactory.bulk_create_batch(PAGE_SIZE, owner=user, task__provider="openai_compatible", task__model="dall-e-3")
    ImageFactory.bulk_create_batch(2, owner=user, newest=NOW - timedelta(days=30))
    first = auth_client.get(GALLERY)
    assert 'class="gallery-sketch-note" hidden' in first.content.decode()
    later = auth_client.get(next_link(first), HTTP_HX_REQUEST="true").content.decode()
    assert '<p id="gallery-sketch-note" class="gallery-sketch-note" hx-swap-oob="true">' in later


def test_the_first_tiles_load_at_once_and_the_rest_when_near(auth_client, user):
    ImageFactory.bulk_create_batch(PAGE_SIZE, owner=user)
    html = auth_client.get(GALLERY).content.decode()
    grid = html.split('id="gallery-grid"')[1]
    assert grid.count("<img src=") - grid.count("<noscript><img src=") == EAGER_THUMBNAILS
    assert grid.count("<img data-src=") == PAGE_SIZE - EAGER_THUMBNAILS
    # Without JavaScript the later ones come from <noscript>, lazily.
    assert grid.count('<noscript><img src="') == PAGE_SIZE - EAGER_THUMBNAILS
    later = auth_client.get(next_link(auth_client.get(GALLERY)) or GALLERY + "?after=x", HTTP_HX_REQUEST="true")
    assert later.status_code == 200


@pytest.mark.parametrize(
    ("query", "expected"),
    [("", "7 images in your gallery"), ("?favorites=1", "2 images match these filters")],
)
def test_the_total_counts_every_matching_image_not_just_the_page(auth_client, user, other_user, query, expected):
    images = ImageFactory.bulk_create_batch(7, owner=user)
    ImageFactory.bulk_create_batch(3, owner=other_user)
    Image.objects.filter(pk__in=[images[0].pk, images[1].pk]).update(is_favorite=True)
    assert expected in auth_client.get(GALLERY + query).content.decode()


def test_the_thumbnail_size_control_is_only_for_javascript(auth_client, user):
    ImageFactory.bulk_create_batch(1, owner=user)
    html = auth_client.get(GALLERY).content.decode()
    assert '<div class="thumb-size" id="thumb-size-control" hidden>' in html
    assert 'type="range" id="thumb-size"' in html and "Thumbnail size" in html


def test_another_persons_images_never_show(auth_client, user, other_user):
    mine = ImageFactory.bulk_create_batch(2, owner=user, task__prompt="my lighthouse")
    theirs = ImageFactory.bulk_create_batch(
        3, owner=other_user, task__prompt="their secret harbour", task__provider="theirprov", task__model="theirmodel"
    )
    TagFactory(owner=other_user, name="their-tag")
    html = auth_client.get(GALLERY).content.decode()
    assert set(ids_on(auth_client.get(GALLERY))) == {str(image.pk) for image in mine}
    assert not any(str(image.pk) in html for image in theirs)
    assert "their secret harbour" not in html and "theirprov" not in html and "their-tag" not in html


# --- keyset pages ---------------------------------------------------------------------------


def walk_pages(client, url: str = GALLERY) -> list[list[str]]:
    pages = []
    while url:
        response = client.get(url)
        assert response.status_code == 200
        pages.append(ids_on(response))
        url = next_link(response)
        assert len(pages) < 20
    return pages


def test_pages_cover_every_image_once_newest_first(auth_client, user):
    images = ImageFactory.bulk_create_batch(PAGE_SIZE * 2 + 5, owner=user)
    pages = walk_pages(auth_client)
    assert [len(page) for page in pages] == [PAGE_SIZE, PAGE_SIZE, 5]
    assert [pk for page in pages for pk in page] == [str(image.pk) for image in images]


def test_pages_are_stable_when_many_images_share_a_created_at(auth_client, user):
    images = ImageFactory.bulk_create_batch(
        60, owner=user, newest=NOW, step=timedelta(0)
    ) + ImageFactory.bulk_create_batch(50, owner=user, newest=NOW - timedelta(days=1), step=timedelta(0))
    shown = [pk for page in walk_pages(auth_client) for pk in page]
    assert len(shown) == len(set(shown)) == 110
    expected = sorted(images, key=lambda image: (image.created_at, image.pk), reverse=True)
    assert shown == [str(image.pk) for image in expected]


def test_the_next_page_sentinel_is_an_htmx_revealed_trigger_with_a_plain_link(auth_client, user):
    ImageFactory.bulk_create_batch(PAGE_SIZE + 1, owner=user)
    html = auth_client.get(GALLERY + "?q=lighthouse").content.decode()
    sentinel = html.split('<li class="gallery-more"')[1].split("</li>")[0]
    assert 'hx-trigger="revealed"' in sentinel and 'hx-swap="outerHTML"' in sentinel
    assert 'hx-get="/gallery/?q=lighthouse&amp;after=' in sentinel
    assert 'href="/gallery/?q=lighthouse&amp;after=' in sentinel and "Older images →" in sentinel


def test_an_htmx_page_is_just_the_items_and_the_next_sentinel(auth_client, user):
    images = ImageFactory.bulk_create_batch(PAGE_SIZE * 2 + 1, owner=user)
    url = next_link(auth_client.get(GALLERY))
    response = auth_client.get(url, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert "<html" not in html and "<form" not in html and 'role="search"' not in html
    assert html.strip().startswith("<li")
    assert ids_on(response) == [str(image.pk) for image in images[PAGE_SIZE : PAGE_SIZE * 2]]
    assert 'class="gallery-more"' in html
    last = auth_client.get(next_link(response), HTTP_HX_REQUEST="true")
    assert ids_on(last) == [str(images[-1].pk)] and 'class="gallery-more"' not in last.content.decode()


def test_a_later_page_without_javascript_links_back_to_the_newest(auth_client, user):
    ImageFactory.bulk_create_batch(PAGE_SIZE + 2, owner=user)
    html = auth_client.get(next_link(auth_client.get(GALLERY))).content.decode()
    assert "← Newest images" in html


@pytest.mark.parametrize(
    "token",
    ["", "garbage", "!!!", "a" * 500, "MjAyNi0wNS0yMFQxMjowMDowMHxub3QtYS11dWlk", "bm9waXBl", "%00", "2026-05-20"],
)
def test_an_invalid_cursor_is_the_first_page(auth_client, user, token):
    images = ImageFactory.bulk_create_batch(3, owner=user)
    response = auth_client.get(GALLERY, {"after": token})
    assert response.status_code == 200
    assert ids_on(response) == [str(image.pk) for image in images]


def test_cursors_round_trip_and_naive_times_are_refused(user):
    image = ImageFactory.bulk_create_batch(1, owner=user)[0]
    assert decode_cursor(encode_cursor(image)) == (image.created_at, image.pk)
    import base64

    naive = base64.urlsafe_b64encode(f"2026-05-20T12:00:00|{uuid.uuid4()}".encode()).decode()
    assert decode_cursor(naive) is None


def test_a_cursor_past_the_end_shows_no_older_images(auth_client, user):
    images = ImageFactory.bulk_create_batch(2, owner=user)
    response = auth_client.get(GALLERY, {"after": encode_cursor(images[-1])})
    assert ids_on(response) == [] and "There are no older images" in response.content.decode()


# --- filters --------------------------------------------------------------------------------


@pytest.fixture
def assorted(user):
    """Images that differ in one way each."""
    return {
        "fox": ImageFactory.bulk_create_batch(
            1, owner=user, newest=NOW - timedelta(days=3), task__prompt="A red FOX in snow"
        )[0],
        "heron": ImageFactory.bulk_create_batch(
            1, owner=user, newest=NOW - timedelta(days=2), task__prompt="heron", task__negative_prompt="blurry fox"
        )[0],
        "city": ImageFactory.bulk_create_batch(
            1,
            owner=user,
            newest=NOW - timedelta(days=1),
            task__prompt="a city at night",
            task__provider="openai_compatible",
            task__model="gpt-image-1",
        )[0],  # fmt: skip
        "dalle": ImageFactory.bulk_create_batch(
            1,
            owner=user,
            newest=NOW,
            task__prompt="a city at noon",
            task__provider="openai_compatible",
            task__model="dall-e-3",
        )[0],  # fmt: skip
    }


def shown(client, **params) -> set[str]:
    response = client.get(GALLERY, params)
    assert response.status_code == 200
    return set(ids_on(response))


def ids(assorted, *names) -> set[str]:
    return {str(assorted[name].pk) for name in names}


def test_text_search_covers_prompt_and_negative_prompt_case_insensitively(auth_client, assorted):
    assert shown(auth_client, q="fox") == ids(assorted, "fox", "heron")
    assert shown(auth_client, q="  Red fox ") == ids(assorted, "fox")
    assert shown(auth_client, q="CITY AT") == ids(assorted, "city", "dalle")
    assert shown(auth_client, q="100%_") == set()


def test_tag_filter_uses_the_persons_tag_in_any_case(auth_client, user, other_user, assorted):
    sunsets = TagFactory(owner=user, name="Sunsets")
    assorted["fox"].tags.add(sunsets)
    assorted["city"].tags.add(sunsets, TagFactory(owner=user, name="cities"))
    theirs = TagFactory(owner=other_user, name="mine-only")
    ImageFactory.bulk_create_batch(1, owner=other_user)[0].tags.add(theirs)
    assert shown(auth_client, tag="sunsets") == ids(assorted, "fox", "city")
    assert shown(auth_client, tag="SUNSETS", q="city") == ids(assorted, "city")
    html = auth_client.get(GALLERY, {"tag": "sunsets"}).content.decode()
    assert '<option value="Sunsets" selected>' in html


def test_an_unknown_tag_is_an_empty_result_with_a_message(auth_client, user, other_user, assorted):
    TagFactory(owner=other_user, name="theirs")
    for name in ("nope", "theirs", "x" * 80):
        response = auth_client.get(GALLERY, {"tag": name})
        html = response.content.decode()
        assert ids_on(response) == []
        assert "You have no tag called" in html and "No images match these filters" in html
        assert "Clear filters" in html


def test_favourites_only(auth_client, assorted):
    Image.objects.filter(pk__in=[assorted["heron"].pk, assorted["dalle"].pk]).update(is_favorite=True)
    assert shown(auth_client, favorites="1") == ids(assorted, "heron", "dalle")
    assert shown(auth_client, favorites="0") == ids(assorted, "fox", "heron", "city", "dalle")


def test_provider_and_model(auth_client, assorted):
    assert shown(auth_client, provider="offline") == ids(assorted, "fox", "heron")
    assert shown(auth_client, provider="openai_compatible") == ids(assorted, "city", "dalle")
    assert shown(auth_client, model="dall-e-3") == ids(assorted, "dalle")
    assert shown(auth_client, provider="offline", model="dall-e-3") == set()
    assert shown(auth_client, provider="nobody") == set()


def test_the_provider_and_model_choices_are_only_what_the_person_used(auth_client, other_user, assorted):
    ImageFactory.bulk_create_batch(1, owner=other_user, task__provider="volcengine", task__model="seedream")
    html = auth_client.get(GALLERY).content.decode()
    for value in ("offline", "openai_compatible", "sketch-v1", "gpt-image-1", "dall-e-3"):
        assert f'<option value="{value}"' in html
    assert "volcengine" not in html and "seedream" not in html
    assert '<optgroup label="openai_compatible">' in html


def test_the_choices_follow_new_and_deleted_images(auth_client, user, assorted, django_capture_on_commit_callbacks):
    assert '<option value="gpt-image-1"' in auth_client.get(GALLERY).content.decode()  # now cached
    with django_capture_on_commit_callbacks(execute=True):  # not the newest image: only the deletion says so
        services.delete_images(Image.objects.filter(pk=assorted["city"].pk))
    html = auth_client.get(GALLERY).content.decode()
    assert '<option value="gpt-image-1"' not in html and '<option value="dall-e-3"' in html
    ImageFactory.bulk_create_batch(
        1, owner=user, newest=NOW + timedelta(minutes=5), task__provider="volcengine", task__model="seedream"
    )
    html = auth_client.get(GALLERY).content.decode()
    assert '<option value="volcengine"' in html and '<option value="seedream"' in html


def day(offset: int) -> str:
    return (NOW - timedelta(days=offset)).date().isoformat()


def test_date_range_is_inclusive(auth_client, assorted):
    assert shown(auth_client, **{"from": day(2)}) == ids(assorted, "heron", "city", "dalle")
    assert shown(auth_client, to=day(2)) == ids(assorted, "fox", "heron")
    assert shown(auth_client, **{"from": day(2), "to": day(1)}) == ids(assorted, "heron", "city")
    assert shown(auth_client, **{"from": day(0), "to": day(0)}) == ids(assorted, "dalle")


@pytest.mark.parametrize("bad", ["yesterday", "2026-13-01", "2026-02-30", "20260520", "2026-5-2", "２０２６-05-20"])
def test_an_invalid_date_gets_a_message_and_is_ignored(auth_client, assorted, bad):
    response = auth_client.get(GALLERY, {"from": bad, "q": "city"})
    assert set(ids_on(response)) == ids(assorted, "city", "dalle")
    assert "is not a date (use YYYY-MM-DD)" in response.content.decode()


def test_a_from_date_after_the_to_date_is_ignored_with_a_message(auth_client, assorted):
    response = auth_client.get(GALLERY, {"from": "2026-05-20", "to": "2026-05-01"})
    assert len(ids_on(response)) == 4
    assert "is after the “to” date" in response.content.decode()


def test_filters_combine(auth_client, user, assorted):
    tag = TagFactory(owner=user, name="keep")
    for name in ("city", "dalle", "heron"):
        assorted[name].tags.add(tag)
    Image.objects.filter(pk__in=[assorted["city"].pk, assorted["heron"].pk]).update(is_favorite=True)
    combined = {"q": "city", "tag": "keep", "favorites": "1", "provider": "openai_compatible", "model": "gpt-image-1"}
    assert shown(auth_client, **combined) == ids(assorted, "city")
    assert shown(auth_client, **{**combined, "from": NOW.date().isoformat()}) == set()
    assert shown(auth_client, tag="keep", favorites="1") == ids(assorted, "city", "heron")
    assert shown(auth_client, tag="keep", q="fox") == ids(assorted, "heron")


def test_filters_stay_in_next_page_links_and_apply_on_every_page(auth_client, user):
    cats = ImageFactory.bulk_create_batch(PAGE_SIZE + 3, owner=user, task__prompt="a cat", newest=NOW)
    ImageFactory.bulk_create_batch(30, owner=user, task__prompt="a dog", newest=NOW - timedelta(seconds=30))
    Image.objects.filter(pk__in=[image.pk for image in cats]).update(is_favorite=True)
    pages = walk_pages(auth_client, GALLERY + "?q=cat&favorites=1")
    assert [pk for page in pages for pk in page] == [str(image.pk) for image in cats]
    html = auth_client.get(GALLERY + "?q=cat&favorites=1").content.decode()
    assert 'value="q=cat&amp;favorites=1"' in html  # carried by the bulk form too


def test_no_match_says_so_and_offers_to_clear(auth_client, assorted):
    html = auth_client.get(GALLERY, {"q": "unicorn"}).content.decode()
    assert "No images match these filters" in html
    assert f'<a href="{GALLERY}">Clear filters</a>' in html


# --- bulk actions ---------------------------------------------------------------------------


def test_tagging_several_images(auth_client, user):
    images = ImageFactory.bulk_create_batch(4, owner=user)
    response = post_bulk(auth_client, "tag", images[:3], tag="  sunsets ", filters="q=x&favorites=1")
    assert response.status_code == 302 and response["Location"] == GALLERY + "?q=x&favorites=1"
    assert messages_of(response) == ["Tagged 3 images “sunsets”."]
    tag = Tag.objects.get(owner=user)
    assert set(tag.images.all()) == set(images[:3])
    again = post_bulk(auth_client, "tag", images[2:], tag="SUNSETS")
    assert messages_of(again) == ["Tagged 2 images “sunsets”."]
    assert Tag.objects.filter(owner=user).count() == 1 and tag.images.count() == 4


@pytest.mark.parametrize(
    ("name", "error"), [("", "Give the tag a name."), ("x" * 51, "50 characters"), ("a\u200bb", "invisible")]
)
def test_an_invalid_tag_name_changes_nothing(auth_client, user, name, error):
    images = ImageFactory.bulk_create_batch(2, owner=user)
    response = post_bulk(auth_client, "tag", images, tag=name)
    assert response.status_code == 302
    assert error in messages_of(response)[0] and "Nothing was changed." in messages_of(response)[0]
    assert not Tag.objects.exists()


def test_untagging(auth_client, user):
    images = ImageFactory.bulk_create_batch(3, owner=user)
    tag = TagFactory(owner=user, name="Dusk")
    for image in images:
        image.tags.add(tag)
    response = post_bulk(auth_client, "untag", images[:2], tag="dusk")
    assert messages_of(response) == ["Removed “Dusk” from 2 images."]
    assert list(tag.images.all()) == [images[2]]
    unknown = post_bulk(auth_client, "untag", images, tag="dawn")
    assert messages_of(unknown) == ["You have no tag called “dawn”. Nothing was changed."]
    assert list(tag.images.all()) == [images[2]]


def test_favourite_and_unfavourite(auth_client, user):
    images = ImageFactory.bulk_create_batch(3, owner=user)
    response = post_bulk(auth_client, "favorite", images[:2])
    assert messages_of(response) == ["Added 2 images to your favourites."]
    assert set(Image.objects.filter(is_favorite=True)) == set(images[:2])
    response = post_bulk(auth_client, "unfavorite", images[1:2])
    assert messages_of(response) == ["Removed 1 image from your favourites."]
    assert list(Image.objects.filter(is_favorite=True)) == [images[0]]


def test_delete_asks_first_without_javascript(auth_client, user):
    images = ImageFactory.bulk_create_batch(3, owner=user)
    response = post_bulk(auth_client, "delete", images[:2], filters="q=x")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Delete 2 images?" in html and 'name="confirm" value="yes"' in html
    assert html.count('<input type="hidden" name="image"') == 2
    assert 'value="q=x"' in html and 'href="/gallery/?q=x">Cancel' in html
    assert Image.objects.count() == 3


def test_deleting_removes_rows_and_files_after_commit(
    auth_client, user, completed_task, media_root, django_capture_on_commit_callbacks
):
    images = list(completed_task.images.all())
    files = [Path(image.file.path) for image in images] + [Path(image.thumbnail.path) for image in images]
    keep = ImageFactory.bulk_create_batch(1, owner=user)[0]
    assert all(path.is_file() for path in files)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_bulk(auth_client, "delete", images, confirm="yes")
    assert messages_of(response) == ["Deleted 2 images."]
    assert list(Image.objects.all()) == [keep]
    assert not any(path.exists() for path in files)
    assert Task.objects.filter(pk=completed_task.pk).exists()


# --- bulk actions in place (htmx): the message, the changed tiles, nothing else ----------------

HTMX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "gallery-bulk-status"}


def post_bulk_htmx(client, action: str, images, **extra):
    data = {"action": action, "image": [str(getattr(image, "pk", image)) for image in images], **extra}
    return client.post(BULK, data, **HTMX)


def test_an_htmx_tag_answers_the_message_in_place_without_a_redirect(auth_client, user):
    images = ImageFactory.bulk_create_batch(3, owner=user)
    response = post_bulk_htmx(auth_client, "tag", images[:2], tag="dusk")
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert html.strip().startswith("Tagged 2 images “dusk”.")
    assert "hx-swap-oob" not in html  # the tiles do not show tags: nothing else changes
    assert list(get_messages(response.wsgi_request)) == []  # not kept for the next page either
    assert set(Tag.objects.get(owner=user).images.all()) == set(images[:2])


def test_an_htmx_favourite_sends_back_the_changed_tiles_still_selected(auth_client, user):
    images = ImageFactory.bulk_create_batch(3, owner=user)
    html = post_bulk_htmx(auth_client, "favorite", images[:2]).content.decode()
    assert html.strip().startswith("Added 2 images to your favourites.")
    for image in images[:2]:
        tile = html.split(f'id="image-{image.pk}"')[1].split("</li>")[0]
        assert 'hx-swap-oob="true"' in tile and 'value="' + str(image.pk) + '" checked' in tile
        assert 'class="gallery-star"' in tile and f'src="{image.thumbnail_url}"' in tile
    assert f'id="image-{images[2].pk}"' not in html


def test_an_htmx_delete_removes_the_tiles_and_updates_the_total(auth_client, user):
    images = ImageFactory.bulk_create_batch(4, owner=user)
    Image.objects.filter(pk=images[3].pk).update(is_favorite=True)
    response = post_bulk_htmx(auth_client, "delete", images[:2], confirm="yes", filters="favorites=1")
    html = response.content.decode()
    assert html.strip().startswith("Deleted 2 images.")
    for image in images[:2]:
        assert f'<li id="image-{image.pk}" hx-swap-oob="delete"></li>' in html
    assert 'id="gallery-total" class="gallery-total" hx-swap-oob="true">1 image matches these filters' in html
    assert set(Image.objects.all()) == set(images[2:])


@pytest.mark.parametrize(
    ("action", "extra", "expected"),
    [
        ("tag", {"tag": ""}, "Give the tag a name."),
        ("untag", {"tag": "dawn"}, "You have no tag called “dawn”. Nothing was changed."),
    ],
)
def test_an_htmx_refusal_is_a_message_in_place_with_a_200(auth_client, user, action, extra, expected):
    images = ImageFactory.bulk_create_batch(1, owner=user)
    response = post_bulk_htmx(auth_client, action, images, **extra)
    assert response.status_code == 200  # htmx 2 swaps no 4xx
    assert '<span class="errors">' in response.content.decode() and expected in response.content.decode()


def test_an_htmx_bulk_action_on_another_persons_image_changes_nothing(auth_client, user, other_user):
    mine = ImageFactory.bulk_create_batch(1, owner=user)
    theirs = ImageFactory.bulk_create_batch(1, owner=other_user)
    response = post_bulk_htmx(auth_client, "favorite", mine + theirs)
    html = response.content.decode()
    assert response.status_code == 200 and "Nothing was changed." in html
    assert f"image-{theirs[0].pk}" not in html and f"image-{mine[0].pk}" not in html
    assert not Image.objects.filter(is_favorite=True).exists()


def test_an_empty_selection_or_unknown_action_changes_nothing(auth_client, user):
    images = ImageFactory.bulk_create_batch(2, owner=user)
    response = auth_client.post(BULK, {"action": "favorite"})
    assert response.status_code == 302 and messages_of(response) == ["Select at least one image first."]
    response = post_bulk(auth_client, "explode", images)
    assert response.status_code == 400 and "Choose what to do" in response.content.decode()
    assert auth_client.get(BULK).status_code == 405
    assert not Image.objects.filter(is_favorite=True).exists()


@pytest.mark.parametrize("action", ["tag", "untag", "favorite", "unfavorite", "delete", "download"])
@pytest.mark.parametrize("intruder", ["foreign", "unknown"])
def test_a_selection_with_an_id_not_mine_is_refused_whole(auth_client, user, other_user, action, intruder):
    mine = ImageFactory.bulk_create_batch(2, owner=user)
    theirs = ImageFactory.bulk_create_batch(1, owner=other_user)[0]
    tag = TagFactory(owner=user, name="t")
    mine[0].tags.add(tag)
    stranger = theirs.pk if intruder == "foreign" else uuid.uuid4()
    response = post_bulk(auth_client, action, [*mine, stranger], tag="t", confirm="yes")
    assert response.status_code == 404
    assert "Nothing was changed" in response.content.decode() and "not in your gallery" in response.content.decode()
    assert Image.objects.count() == 3 and not Image.objects.filter(is_favorite=True).exists()
    assert list(tag.images.all()) == [mine[0]] and Tag.objects.count() == 1
    assert str(theirs.pk) not in response.content.decode()


def test_a_malformed_id_is_refused(auth_client, user):
    images = ImageFactory.bulk_create_batch(1, owner=user)
    response = post_bulk(auth_client, "favorite", [images[0].pk, "../etc/passwd"])
    assert response.status_code == 400 and "not an image id" in response.content.decode()
    assert not Image.objects.filter(is_favorite=True).exists()


def test_another_person_cannot_act_on_my_images(auth_client, other_client, user):
    images = ImageFactory.bulk_create_batch(2, owner=user)
    for action in ("favorite", "delete"):
        assert post_bulk(other_client, action, images, confirm="yes").status_code == 404
    assert post_bulk(other_client, "download", images).status_code == 404
    assert Image.objects.filter(owner=user, is_favorite=False).count() == 2


def test_the_redirect_keeps_only_gallery_filters(auth_client, user):
    images = ImageFactory.bulk_create_batch(1, owner=user)
    response = post_bulk(auth_client, "favorite", images, filters="q=sea&evil=//example.com&tag=a b")
    assert response["Location"] == GALLERY + "?q=sea&tag=a+b"
    response = post_bulk(auth_client, "favorite", images, filters="https://example.com/")
    assert response["Location"] == GALLERY


# --- zip download ---------------------------------------------------------------------------


def open_zip(response) -> zipfile.ZipFile:
    assert response.streaming
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def test_download_streams_the_originals_and_a_manifest(auth_client, user, completed_task):
    images = completed_task.ordered_images
    tag = TagFactory(owner=user, name="Keepers")
    images[0].tags.add(tag)
    Image.objects.filter(pk=images[1].pk).update(is_favorite=True)
    response = auth_client.post(DOWNLOAD, {"image": [str(image.pk) for image in images]})
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith('attachment; filename="atelier-2-images-')
    archive = open_zip(response)
    assert archive.testzip() is None
    names = archive.namelist()
    assert sorted(names) == sorted([f"atelier-{image.pk}.png" for image in images] + ["manifest.json"])
    for image in images:
        data = archive.read(f"atelier-{image.pk}.png")
        assert data == Path(image.file.path).read_bytes()
        assert b"iTXt" in data and b"parameters" in data
        assert "parameters" in PILImage.open(io.BytesIO(data)).text
    manifest = {entry["image_id"]: entry for entry in json.loads(archive.read("manifest.json"))["images"]}
    first = manifest[str(images[0].pk)]
    assert set(first) == {
        "image_id",
        "task_id",
        "file",
        "prompt",
        "negative_prompt",
        "provider",
        "model",
        "width",
        "height",
        "seed",
        "steps",
        "guidance_scale",
        "created_at",
        "tags",
        "favourite",
    }
    assert first["task_id"] == str(completed_task.pk) and first["file"] == f"atelier-{images[0].pk}.png"
    assert first["prompt"] == completed_task.prompt and first["provider"] == "offline"
    assert (first["width"], first["height"], first["seed"]) == (images[0].width, images[0].height, images[0].seed)
    assert first["tags"] == ["Keepers"] and first["favourite"] is False
    assert manifest[str(images[1].pk)]["favourite"] is True and manifest[str(images[1].pk)]["tags"] == []


def test_the_bulk_form_download_button_without_formaction_also_downloads(auth_client, completed_task):
    images = completed_task.ordered_images
    response = post_bulk(auth_client, "download", images)
    assert len(open_zip(response).namelist()) == 3


def test_a_missing_file_is_left_out_and_named_in_the_manifest(auth_client, completed_task):
    images = completed_task.ordered_images
    Path(images[0].file.path).unlink()
    archive = open_zip(auth_client.post(DOWNLOAD, {"image": [str(image.pk) for image in images]}))
    assert archive.namelist() == [f"atelier-{images[1].pk}.png", "manifest.json"]
    entry = next(e for e in json.loads(archive.read("manifest.json"))["images"] if e["image_id"] == str(images[0].pk))
    assert entry["file"] is None and "could not be read" in entry["missing"]


def test_download_without_a_selection_goes_back_with_a_message(auth_client):
    response = auth_client.post(DOWNLOAD, {"filters": "q=a"})
    assert response.status_code == 302 and response["Location"] == GALLERY + "?q=a"
    assert messages_of(response) == ["Select at least one image to download."]


def _members(tmp_path: Path, count: int, size: int) -> list[ZipMember]:
    members = []
    for index in range(count):
        path = tmp_path / f"f{index}.bin"
        path.write_bytes(bytes([index % 251]) * size)
        members.append(ZipMember(f"f{index}.bin", NOW, lambda path=path: path.open("rb"), size))
    return members


def test_the_zip_stream_yields_bounded_chunks(tmp_path):
    chunks = list(stream_zip(_members(tmp_path, 8, 1_000_000), chunk_size=64 * 1024))
    assert len(chunks) > 8 * 15
    assert max(len(chunk) for chunk in chunks) <= 64 * 1024 + 1024
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert archive.testzip() is None and len(archive.namelist()) == 8
    assert archive.read("f3.bin") == bytes([3]) * 1_000_000


def test_the_zip_streams_peak_memory_does_not_grow_with_the_number_of_files(tmp_path):
    def peak(count: int) -> int:
        members = _members(tmp_path / str(count), count, 2_000_000)
        tracemalloc.start()
        try:
            total = sum(len(chunk) for chunk in stream_zip(members))
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            assert total > count * 2_000_000

    (tmp_path / "2").mkdir()
    (tmp_path / "12").mkdir()
    few, many = peak(2), peak(12)
    assert many < 1_000_000, many  # 24 MB went through; never more than a few chunks held
    assert many < few * 2 + 200_000, (few, many)


# --- constant query counts ------------------------------------------------------------------


def populate(user, count: int) -> None:
    images = ImageFactory.bulk_create_batch(count, owner=user, task__prompt="a quiet harbour", newest=NOW)
    tags = [TagFactory(owner=user, name=f"tag {n}") for n in range(5)]
    through = Image.tags.through
    through.objects.bulk_create([through(image_id=image.pk, tag_id=tag.pk) for image in images for tag in tags])
    Image.objects.filter(pk__in=[image.pk for image in images[::3]]).update(is_favorite=True)


def count_queries(client, url: str, **headers) -> int:
    with CaptureQueriesContext(connection) as context:
        response = client.get(url, **headers)
    assert response.status_code == 200
    return len(context)


@pytest.mark.parametrize("query", ["", "?q=harbour&tag=tag+1&favorites=1&from=2026-01-01"])
def test_query_counts_do_not_grow_with_images_or_tags(auth_client, user, other_user, django_assert_num_queries, query):
    populate(other_user, 10)
    small_client = client_for(other_user)
    first = count_queries(small_client, GALLERY + query)
    scroll_url = next_link(small_client.get(GALLERY + query)) or GALLERY + query + ("&" if query else "?") + "after=x"
    scroll = count_queries(small_client, scroll_url, HTTP_HX_REQUEST="true")

    populate(user, 500)
    with django_assert_num_queries(first):
        assert len(ids_on(auth_client.get(GALLERY + query))) == PAGE_SIZE
    page_two = next_link(auth_client.get(GALLERY + query))
    with django_assert_num_queries(scroll):
        assert len(ids_on(auth_client.get(page_two, HTTP_HX_REQUEST="true"))) == PAGE_SIZE
    assert first <= 8 and scroll <= 6, (first, scroll)
