"""Tags: the rules (per person, trimmed, case-insensitively unique, 50 characters, no control
characters), adding and removing them on an image, suggestions, and the tag page."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from generator.models import Image, Tag

from .factories import ImageFactory, TagFactory

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def image(completed_task) -> Image:
    return completed_task.ordered_images[0]


def add(client, image: Image, name: str, **headers):
    return client.post(reverse("generator:image_tag_add", args=[image.pk]), {"name": name}, **headers)


def names(image: Image) -> list[str]:
    return sorted(image.tags.values_list("name", flat=True))


# --- adding: the rules -----------------------------------------------------------------------


def test_a_name_is_trimmed_and_inner_spaces_collapse(auth_client, user, image):
    response = add(auth_client, image, "   sunset \t  beach  ")
    assert response.status_code == 302 and response["Location"] == reverse("generator:image_detail", args=[image.pk])
    assert names(image) == ["sunset beach"]
    assert Tag.objects.get(owner=user).name == "sunset beach"


def test_a_name_in_another_case_reuses_the_existing_tag(auth_client, user, completed_task):
    first, second = completed_task.ordered_images
    add(auth_client, first, "sunset")
    add(auth_client, second, "Sunset")
    add(auth_client, second, " SUNSET ")
    tag = Tag.objects.get(owner=user)
    assert tag.name == "sunset"
    assert names(first) == names(second) == ["sunset"]


def test_adding_a_tag_with_htmx_returns_the_tags_with_the_new_chip(auth_client, image):
    response = add(auth_client, image, "harbour", **HTMX)
    assert response.status_code == 200
    fragment = response.content.decode()
    assert "<html" not in fragment and fragment.lstrip().startswith(f'<section id="image-tags-{image.pk}"')
    tag = Tag.objects.get(name="harbour")
    assert 'href="/gallery/?tag=harbour"' in fragment
    assert reverse("generator:image_tag_remove", args=[image.pk, tag.pk]) in fragment
    assert "Tag “harbour” added." in fragment


@pytest.mark.parametrize(
    "name, message",
    [
        ("", "Give the tag a name."),
        ("   \t ", "Give the tag a name."),
        ("x" * 51, "Keep tag names to 50 characters or fewer."),
        ("bad\x00name", "Tag names cannot contain control or invisible characters."),
        ("bell\x07", "Tag names cannot contain control or invisible characters."),
        ("zero\u200bwidth", "Tag names cannot contain control or invisible characters."),
        ("rtl\u202eoverride", "Tag names cannot contain control or invisible characters."),
    ],
)
def test_an_invalid_name_gets_a_clear_error_in_place_and_changes_nothing(auth_client, user, image, name, message):
    response = add(auth_client, image, name)
    assert response.status_code == 400
    page = response.content.decode()
    assert message in page and 'aria-invalid="true"' in page and "<html" in page
    response = add(auth_client, image, name, **HTMX)
    assert response.status_code == 200  # htmx 2 swaps only 2xx: the error must arrive
    fragment = response.content.decode()
    assert message in fragment and 'role="alert"' in fragment and "<html" not in fragment
    assert not Tag.objects.filter(owner=user).exists()
    assert names(image) == []


def test_fifty_characters_are_allowed_after_trimming(auth_client, image):
    name = "y" * 50
    assert add(auth_client, image, f"  {name}  ").status_code == 302
    assert names(image) == [name]


def test_the_typed_name_is_kept_and_escaped_after_an_error(auth_client, image):
    response = add(auth_client, image, "<b>" + "z" * 60, **HTMX)
    fragment = response.content.decode()
    assert 'value="&lt;b&gt;zzz' in fragment and "<b>zzz" not in fragment


def test_tags_are_per_person(auth_client, user, other_user, image):
    theirs = TagFactory(owner=other_user, name="sunset")
    add(auth_client, image, "Sunset")
    mine = Tag.objects.get(owner=user)
    assert mine.pk != theirs.pk and mine.name == "Sunset"
    assert list(image.tags.all()) == [mine]
    assert Tag.objects.get(pk=theirs.pk).name == "sunset"


def test_another_persons_tag_id_is_not_found(auth_client, other_user, image):
    theirs = TagFactory(owner=other_user, name="private")
    their_image = ImageFactory(task__owner=other_user, files=False)
    their_image.tags.add(theirs)
    for url in (
        reverse("generator:image_tag_remove", args=[image.pk, theirs.pk]),
        reverse("generator:tag_rename", args=[theirs.pk]),
        reverse("generator:tag_delete", args=[theirs.pk]),
    ):
        assert auth_client.post(url, {"name": "renamed"}).status_code == 404, url
    assert Tag.objects.get(pk=theirs.pk).name == "private"
    assert list(their_image.tags.all()) == [theirs]


def test_removing_a_tag_from_an_image_keeps_the_tag(auth_client, user, completed_task):
    first, second = completed_task.ordered_images
    tag = TagFactory(owner=user, name="keep me")
    first.tags.add(tag)
    second.tags.add(tag)
    response = auth_client.post(reverse("generator:image_tag_remove", args=[first.pk, tag.pk]), **HTMX)
    assert response.status_code == 200
    fragment = response.content.decode()
    assert "<html" not in fragment and "No tags yet." in fragment and "Tag “keep me” removed." in fragment
    assert names(first) == [] and names(second) == ["keep me"]
    assert Tag.objects.filter(pk=tag.pk).exists()
    # Without JavaScript: back to the page it came from.
    second_url = reverse("generator:image_detail", args=[second.pk])
    response = auth_client.post(reverse("generator:image_tag_remove", args=[second.pk, tag.pk]), {"next": second_url})
    assert response.status_code == 302 and response["Location"] == second_url
    assert names(second) == [] and Tag.objects.filter(pk=tag.pk).exists()


# --- suggestions ---------------------------------------------------------------------------------


def test_suggestions_come_only_from_my_own_tags(auth_client, user, other_user, image):
    for name in ("Sunset", "sunrise", "harbour"):
        TagFactory(owner=user, name=name)
    TagFactory(owner=other_user, name="sunny secret")
    image.tags.add(Tag.objects.get(name="sunrise"))
    response = auth_client.get(reverse("generator:tag_suggest"), {"q": "SUN"})
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert response.json() == ["sunrise", "Sunset"]  # most used first, then by name
    assert auth_client.get(reverse("generator:tag_suggest")).json() == ["sunrise", "harbour", "Sunset"]


def test_suggestions_for_htmx_are_a_datalist(auth_client, user, image):
    TagFactory(owner=user, name="a <b> tag")
    list_id = f"tag-suggestions-{image.pk}"
    response = auth_client.get(reverse("generator:tag_suggest"), {"name": "<b", "list": list_id}, **HTMX)
    assert (
        response.content.decode().strip()
        == f'<datalist id="{list_id}"><option value="a &lt;b&gt; tag"></option></datalist>'
    )
    response = auth_client.get(reverse("generator:tag_suggest"), {"q": "zzz", "list": '"><script>'}, **HTMX)
    assert response.content.decode().strip() == '<datalist id="tag-suggestions"></datalist>'


# --- the tag page ----------------------------------------------------------------------------------


def test_the_tag_page_lists_my_tags_with_counts_and_gallery_links(auth_client, user, other_user, completed_task):
    first, second = completed_task.ordered_images
    both, one = TagFactory(owner=user, name="a&b c"), TagFactory(owner=user, name="solo")
    TagFactory(owner=user, name="unused")
    TagFactory(owner=other_user, name="not yours")
    first.tags.add(both, one)
    second.tags.add(both)
    page = auth_client.get(reverse("generator:tag_list")).content.decode()
    assert 'href="/gallery/?tag=a%26b%20c">a&amp;b c</a>' in page
    assert "2 images" in page and "1 image<" in page and "0 images" in page
    assert "not yours" not in page
    assert page.index("a&amp;b c") < page.index("solo") < page.index("unused")


def test_the_tag_page_explains_how_to_add_tags_when_there_are_none(auth_client):
    page = auth_client.get(reverse("generator:tag_list")).content.decode()
    assert "You have no tags yet." in page and 'href="/gallery/"' in page


def make_tagged_images(user, images: int, tags: int) -> None:
    """`images` images of one task, each with one of `tags` tags in turn."""
    rows = ImageFactory.bulk_create_batch(images, owner=user)
    tag_rows = TagFactory.bulk_create_batch(tags, owner=user)
    Through = Image.tags.through
    Through.objects.bulk_create(
        Through(image_id=image.pk, tag_id=tag_rows[n % tags].pk) for n, image in enumerate(rows)
    )


def tag_page_queries(client) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse("generator:tag_list"))
    assert response.status_code == 200
    return len(captured)


def test_the_tag_page_runs_the_same_queries_for_10_and_500_tagged_images(user, other_user, auth_client, other_client):
    make_tagged_images(user, images=10, tags=3)
    make_tagged_images(other_user, images=500, tags=60)
    few, many = tag_page_queries(auth_client), tag_page_queries(other_client)
    assert few == many <= 4, (few, many)
    assert "500 images" not in other_client.get(reverse("generator:tag_list")).content.decode()
    assert "9 images" in other_client.get(reverse("generator:tag_list")).content.decode()  # 500 over 60 tags


# --- rename and delete ---------------------------------------------------------------------------


def rename(client, tag: Tag, name: str):
    return client.post(reverse("generator:tag_rename", args=[tag.pk]), {"name": name})


def test_rename_a_tag(auth_client, user, image):
    tag = TagFactory(owner=user, name="sunset")
    image.tags.add(tag)
    response = rename(auth_client, tag, "  golden   hour ")
    assert response.status_code == 302 and response["Location"] == reverse("generator:tag_list")
    assert Tag.objects.get(pk=tag.pk).name == "golden hour"
    assert names(image) == ["golden hour"]
    assert "Renamed “sunset” to “golden hour”." in auth_client.get(response["Location"]).content.decode()


def test_rename_to_another_case_of_the_same_name_is_allowed(auth_client, user):
    tag = TagFactory(owner=user, name="sunset")
    assert rename(auth_client, tag, "Sunset").status_code == 302
    assert Tag.objects.get(pk=tag.pk).name == "Sunset"


def test_rename_to_a_name_another_of_my_tags_has_is_refused(auth_client, user, other_user):
    tag, other = TagFactory(owner=user, name="sunset"), TagFactory(owner=user, name="Dawn")
    TagFactory(owner=other_user, name="dusk")
    response = rename(auth_client, tag, "dawn")
    assert response.status_code == 400
    page = response.content.decode()
    assert "You already have a tag called “dawn”." in page
    assert f'id="rename-{tag.pk}"' in page and 'value="dawn"' in page and "open" in page
    assert sorted(Tag.objects.filter(owner=user).values_list("name", flat=True)) == ["Dawn", "sunset"]
    assert Tag.objects.get(pk=other.pk).name == "Dawn"
    # Another person's tag of that name is no clash.
    assert rename(auth_client, tag, "dusk").status_code == 302


@pytest.mark.parametrize("name", ["", "   ", "q" * 51, "bell\x07", "\u200b"])
def test_rename_to_an_invalid_name_is_refused_with_a_message(auth_client, user, name):
    tag = TagFactory(owner=user, name="sunset")
    response = rename(auth_client, tag, name)
    assert response.status_code == 400
    assert 'role="alert"' in response.content.decode()
    assert Tag.objects.get(pk=tag.pk).name == "sunset"


def test_delete_a_tag_keeps_its_images(auth_client, user, completed_task):
    first, second = completed_task.ordered_images
    doomed, kept = TagFactory(owner=user, name="doomed"), TagFactory(owner=user, name="kept")
    first.tags.add(doomed, kept)
    second.tags.add(doomed)
    page = auth_client.get(reverse("generator:tag_list")).content.decode()
    assert (
        "<details" in page and f'action="{reverse("generator:tag_delete", args=[doomed.pk])}"' in page
    )  # the confirm step
    response = auth_client.post(reverse("generator:tag_delete", args=[doomed.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("generator:tag_list")
    assert not Tag.objects.filter(pk=doomed.pk).exists()
    assert Image.objects.filter(pk__in=[first.pk, second.pk]).count() == 2
    assert names(first) == ["kept"] and names(second) == []
    assert "Deleted the tag “doomed”. Its 2 images were kept." in auth_client.get(response["Location"]).content.decode()


def test_tag_routes_refuse_get(auth_client, user):
    tag = TagFactory(owner=user)
    assert auth_client.get(reverse("generator:tag_rename", args=[tag.pk])).status_code == 405
    assert auth_client.get(reverse("generator:tag_delete", args=[tag.pk])).status_code == 405
    assert Tag.objects.filter(pk=tag.pk).exists()
