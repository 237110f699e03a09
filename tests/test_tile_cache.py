"""Grid tiles are kept once rendered (generator/lib/fragments.py): every change a person can make
shows on the next page, one person's tiles never reach another, and per-request values
(the CSRF field, the page to come back to, the language) are the request's own."""

from __future__ import annotations

import re

import pytest
from django.core.cache import caches
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from generator.lib.fragments import CACHE_ALIAS, RUNS_CACHE_ALIAS
from generator.models import Image
from sharing.models import Publication

from .conftest import client_for
from .factories import ImageFactory, PublicationFactory, TagFactory, UserFactory

GALLERY = reverse("generator:gallery")
EXPLORE = reverse("sharing:explore")
CHINESE = {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9,en;q=0.5"}


@pytest.fixture(autouse=True)
def empty_tile_cache():
    """The kept tiles outlive each test's database rollback (ids are new in each test anyway)."""
    for alias in (CACHE_ALIAS, RUNS_CACHE_ALIAS):
        caches[alias].clear()
    yield
    for alias in (CACHE_ALIAS, RUNS_CACHE_ALIAS):
        caches[alias].clear()


def tile(response, element_id: str) -> str:
    """The <li> with this id in the page, or "" when it is not there."""
    found = re.search(rf'<li [^>]*id="{element_id}".*?</li>', response.content.decode(), re.S)
    return found.group(0) if found else ""


def gallery_tile(client, image: Image, query: str = "") -> str:
    response = client.get(f"{GALLERY}?{query}" if query else GALLERY)
    assert response.status_code == 200
    return tile(response, f"image-{image.pk}")


def explore_tile(client, publication: Publication, query: str = "") -> str:
    response = client.get(f"{EXPLORE}?{query}" if query else EXPLORE)
    assert response.status_code == 200
    return tile(response, f"publication-{publication.pk}")


def total(client, query: str = "") -> str:
    found = re.search(r'id="gallery-total"[^>]*>([^<]*)<', client.get(f"{GALLERY}?{query}").content.decode())
    return found.group(1) if found else ""


# --- the gallery: each change shows on the next page ---------------------------------------


def test_a_favourite_and_its_removal_show_on_the_next_page(auth_client, user):
    image = ImageFactory(task__owner=user)
    assert "gallery-star" not in gallery_tile(auth_client, image)  # kept without a star
    auth_client.post(reverse("generator:image_favorite", args=[image.pk]), {"favorite": "1"})
    assert "gallery-star" in gallery_tile(auth_client, image)
    auth_client.post(reverse("generator:image_favorite", args=[image.pk]), {"favorite": "0"})
    assert "gallery-star" not in gallery_tile(auth_client, image)


def test_bulk_favourite_and_unfavourite_show_on_the_next_page(auth_client, user):
    images = ImageFactory.create_batch(2, task__owner=user)
    assert all("gallery-star" not in gallery_tile(auth_client, image) for image in images)
    ids = [str(image.pk) for image in images]
    auth_client.post(reverse("generator:gallery_bulk"), {"action": "favorite", "image": ids})
    assert all("gallery-star" in gallery_tile(auth_client, image) for image in images)
    auth_client.post(reverse("generator:gallery_bulk"), {"action": "unfavorite", "image": ids})
    assert all("gallery-star" not in gallery_tile(auth_client, image) for image in images)


def test_an_htmx_bulk_answer_is_its_own_tiles_selected_not_the_grids(auth_client, user):
    image = ImageFactory(task__owner=user)
    plain = gallery_tile(auth_client, image)
    assert "is-selected" not in plain and "hx-swap-oob" not in plain
    response = auth_client.post(
        reverse("generator:gallery_bulk"), {"action": "favorite", "image": [str(image.pk)]}, HTTP_HX_REQUEST="true"
    )
    changed = tile(response, f"image-{image.pk}")
    assert "is-selected" in changed and 'hx-swap-oob="true"' in changed and "gallery-star" in changed
    assert "is-selected" not in gallery_tile(auth_client, image)


def test_tagging_and_untagging_show_in_the_tag_filter_and_its_count(auth_client, user):
    image, other = ImageFactory.create_batch(2, task__owner=user)
    TagFactory(owner=user, name="sea")
    assert gallery_tile(auth_client, image, "tag=sea") == ""
    auth_client.post(reverse("generator:image_tag_add", args=[image.pk]), {"name": "Sea"})
    assert gallery_tile(auth_client, image, "tag=sea") != ""
    assert gallery_tile(auth_client, other, "tag=sea") == ""
    assert total(auth_client, "tag=sea") == "1 image matches these filters"
    tag = user.tags.get(name="sea")
    auth_client.post(reverse("generator:image_tag_remove", args=[image.pk, tag.pk]))
    assert gallery_tile(auth_client, image, "tag=sea") == ""


def test_bulk_tag_and_untag_change_the_filtered_page_and_count(auth_client, user):
    images = ImageFactory.create_batch(3, task__owner=user)
    ids = [str(image.pk) for image in images[:2]]
    auth_client.post(reverse("generator:gallery_bulk"), {"action": "tag", "tag": "dusk", "image": ids})
    assert total(auth_client, "tag=dusk") == "2 images match these filters"
    auth_client.post(reverse("generator:gallery_bulk"), {"action": "untag", "tag": "dusk", "image": ids[:1]})
    assert total(auth_client, "tag=dusk") == "1 image matches these filters"
    assert gallery_tile(auth_client, images[0], "tag=dusk") == ""
    assert gallery_tile(auth_client, images[1], "tag=dusk") != ""


def test_a_tag_count_with_other_filters_counts_only_what_matches_them_all(auth_client, user):
    favourite, plain = ImageFactory.create_batch(2, task__owner=user)
    Image.objects.filter(pk=favourite.pk).update(is_favorite=True)
    ids = [str(favourite.pk), str(plain.pk)]
    auth_client.post(reverse("generator:gallery_bulk"), {"action": "tag", "tag": "dusk", "image": ids})
    assert total(auth_client, "tag=dusk") == "2 images match these filters"
    assert total(auth_client, "tag=dusk&favorites=1") == "1 image matches these filters"


def test_a_renamed_tag_filters_under_its_new_name(auth_client, user):
    image = ImageFactory(task__owner=user)
    tag = TagFactory(owner=user, name="draft")
    image.tags.add(tag)
    assert gallery_tile(auth_client, image, "tag=draft") != ""
    auth_client.post(reverse("generator:tag_rename", args=[tag.pk]), {"name": "final"})
    assert gallery_tile(auth_client, image, "tag=final") != ""
    assert gallery_tile(auth_client, image, "tag=draft") == ""


def test_a_deleted_image_leaves_the_page_and_the_total(auth_client, user):
    kept, doomed = ImageFactory.create_batch(2, task__owner=user)
    assert gallery_tile(auth_client, doomed) != ""
    auth_client.post(reverse("generator:image_delete", args=[doomed.pk]))
    assert gallery_tile(auth_client, doomed) == ""
    assert gallery_tile(auth_client, kept) != ""
    assert total(auth_client) == "1 image in your gallery"


def test_bulk_deleted_images_leave_the_page_and_the_total(auth_client, user):
    images = ImageFactory.create_batch(3, task__owner=user)
    assert total(auth_client) == "3 images in your gallery"
    ids = [str(image.pk) for image in images[:2]]
    auth_client.post(reverse("generator:gallery_bulk"), {"action": "delete", "confirm": "yes", "image": ids})
    assert [gallery_tile(auth_client, image) for image in images[:2]] == ["", ""]
    assert total(auth_client) == "1 image in your gallery"


def test_publishing_unpublishing_and_hiding_show_on_the_gallery_tile(auth_client, user):
    image = ImageFactory(task__owner=user)
    assert "gallery-published" not in gallery_tile(auth_client, image)
    auth_client.post(reverse("sharing:publish", args=[image.pk]), {"title": "Dawn", "show_prompt": "on"})
    published = gallery_tile(auth_client, image)
    assert "Published on Explore" in published and "♥ 0" in published
    publication = Publication.objects.get(image=image)
    publication.hide(by=None, reason="test")
    assert "Hidden by staff" in gallery_tile(auth_client, image)
    publication.unhide()
    assert "Published on Explore" in gallery_tile(auth_client, image)
    auth_client.post(reverse("sharing:unpublish", args=[image.pk]))
    assert "gallery-published" not in gallery_tile(auth_client, image)


def test_a_like_shows_in_the_authors_gallery_count(auth_client, user, other_client):
    image = ImageFactory(task__owner=user)
    publication = PublicationFactory(image=image)
    assert "♥ 0" in gallery_tile(auth_client, image)
    other_client.post(reverse("sharing:like", args=[publication.pk]), {"wanted": "1"})
    assert "♥ 1" in gallery_tile(auth_client, image)


def test_one_persons_tiles_never_reach_another(auth_client, user, other_client, other_user):
    mine = ImageFactory(task__owner=user)
    theirs = ImageFactory(task__owner=other_user)
    assert gallery_tile(auth_client, mine) != ""  # kept now
    page = other_client.get(GALLERY).content.decode()
    assert str(mine.pk) not in page and str(theirs.pk) in page


def test_chinese_and_english_pages_each_get_their_own_tile(auth_client, user):
    image = ImageFactory(task__owner=user, is_favorite=True)
    english = gallery_tile(auth_client, image)
    chinese = tile(auth_client.get(GALLERY, **CHINESE), f"image-{image.pk}")
    assert "Select image" in english and "选择图片" not in english
    assert "选择图片" in chinese and "Select image" not in chinese
    assert "Select image" in gallery_tile(auth_client, image)


def test_the_gallery_page_costs_the_same_few_queries_however_many_tiles(auth_client, user):
    ImageFactory.bulk_create_batch(3, owner=user)
    auth_client.get(GALLERY)
    with CaptureQueriesContext(connection) as few:
        auth_client.get(GALLERY)
    ImageFactory.bulk_create_batch(60, owner=user)
    auth_client.get(GALLERY)  # the new tiles rendered and kept
    with CaptureQueriesContext(connection) as many:
        auth_client.get(GALLERY)
    # The user, the page's rows, the total, the choices' stamp and the tag names.
    assert len(few) == len(many) == 5, [query["sql"] for query in many.captured_queries]


# --- Explore -------------------------------------------------------------------------------


@pytest.fixture
def published(db):
    return PublicationFactory(image__task__owner=UserFactory(), title="Harbour at dawn")


def test_a_like_is_pressed_only_for_whoever_liked(published, auth_client, other_client):
    assert 'aria-pressed="false"' in explore_tile(auth_client, published)
    assert 'aria-pressed="false"' in explore_tile(other_client, published)
    auth_client.post(reverse("sharing:like", args=[published.pk]), {"wanted": "1"})
    mine, theirs = explore_tile(auth_client, published), explore_tile(other_client, published)
    assert 'aria-pressed="true"' in mine and "</span>1</button>" in mine
    assert 'aria-pressed="true"' not in theirs and "</span>1</button>" in theirs
    # The same count, liked by the other person now: not pressed for the first any more.
    auth_client.post(reverse("sharing:like", args=[published.pk]), {"wanted": "0"})
    other_client.post(reverse("sharing:like", args=[published.pk]), {"wanted": "1"})
    mine = explore_tile(auth_client, published)
    assert 'aria-pressed="true"' not in mine and "</span>1</button>" in mine
    assert 'aria-pressed="true"' in explore_tile(other_client, published)


def test_a_favourite_is_marked_only_for_whoever_kept_it(published, auth_client, other_client):
    explore_tile(auth_client, published)
    auth_client.post(reverse("sharing:favourite", args=[published.pk]), {"wanted": "1"})
    assert "In favourites" in explore_tile(auth_client, published)
    assert "In favourites" not in explore_tile(other_client, published)


def test_a_new_title_shows_on_explore(published, auth_client):
    author = client_for(published.owner)
    assert "Harbour at dawn" in explore_tile(auth_client, published)
    author.post(
        reverse("sharing:publish", args=[published.image.pk]), {"title": "Harbour at noon", "show_prompt": "on"}
    )
    assert "Harbour at noon" in explore_tile(auth_client, published)


def test_unpublished_and_hidden_images_leave_explore(published, auth_client):
    assert explore_tile(auth_client, published) != ""
    published.hide(by=None, reason="test")
    assert explore_tile(auth_client, published) == ""
    published.unhide()
    assert explore_tile(auth_client, published) != ""
    client_for(published.owner).post(reverse("sharing:unpublish", args=[published.image.pk]))
    assert explore_tile(auth_client, published) == ""


def test_a_kept_tile_carries_each_requests_own_form_field_and_return_page(published, auth_client):
    other = client_for(published.owner)
    first, second = explore_tile(auth_client, published), explore_tile(other, published, "sort=liked")
    tokens = [re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', html) for html in (first, second)]
    assert len(tokens[0]) == 2 and len(set(tokens[0])) == 1  # the like and the favourite form
    assert auth_client.cookies["csrftoken"].value and other.cookies["csrftoken"].value
    assert tokens[0][0] != tokens[1][0]
    assert 'name="next" value="/explore/"' in first
    assert 'name="next" value="/explore/?sort=liked"' in second
    assert "atelier:" not in first + second


def test_a_title_cannot_pose_as_a_placeholder(auth_client):
    publication = PublicationFactory(title="<!--atelier:csrf--> <!--atelier:next-->")
    html = explore_tile(auth_client, publication)
    assert "&lt;!--atelier:csrf--&gt;" in html and "csrfmiddlewaretoken" not in html.split("<form")[0]


def test_chinese_and_english_explore_tiles_differ(auth_client):
    publication = PublicationFactory(title="")
    assert "Untitled" in explore_tile(auth_client, publication)
    chinese = tile(auth_client.get(EXPLORE, **CHINESE), f"publication-{publication.pk}")
    assert "无标题" in chinese and "Untitled" not in chinese


def test_the_tag_choices_escape_names_and_select_the_filtered_one_in_any_case(auth_client, user):
    ImageFactory(task__owner=user)
    TagFactory(owner=user, name="a <b> tag")
    TagFactory(owner=user, name="Sunsets")
    html = auth_client.get(f"{GALLERY}?tag=sunsets").content.decode()
    assert '<option value="a &lt;b&gt; tag">a &lt;b&gt; tag</option>' in html and "<b>" not in html
    assert '<option value="Sunsets" selected>Sunsets</option>' in html
    choices = re.search(r'<select id="filter-tag".*?</select>', html, re.S).group(0)  # type: ignore[union-attr]
    assert choices.count(" selected>") == 1


# --- the page's chrome (templates/base.html keeps its head, menu and language list) ----------


def nav(response) -> str:
    found = re.search(r"<nav aria-label=.*?</nav>", response.content.decode(), re.S)
    return found.group(0) if found else ""


def test_the_menu_marks_the_page_it_is_on(auth_client):
    assert 'href="/gallery/" aria-current="page"' in nav(auth_client.get(GALLERY))
    explore = nav(auth_client.get(EXPLORE))
    assert 'href="/explore/" aria-current="page"' in explore and 'href="/gallery/" aria-current' not in explore


def test_the_admin_link_follows_staff_status_and_explore_the_sharing_switch(auth_client, user, settings):
    assert "Admin" not in nav(auth_client.get(GALLERY))
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    assert "Admin" in nav(auth_client.get(GALLERY))
    settings.SHARING = "off"
    assert 'href="/explore/"' not in nav(auth_client.get(GALLERY))


def test_the_chrome_is_each_requests_own_language_and_form_fields(auth_client, other_client):
    english = auth_client.get(GALLERY)
    chinese = other_client.get(f"{GALLERY}?q=x", **CHINESE)
    assert "Gallery" in nav(english) and "Gallery" not in nav(chinese)
    assert '<html lang="zh-hans">' in chinese.content.decode()
    assert 'lang="zh-hans" selected' in chinese.content.decode()
    assert 'lang="en" selected' in english.content.decode()
    assert 'name="next" value="/gallery/?q=x"' in chinese.content.decode()
    tokens = [
        set(re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()))
        for page in (english, chinese)
    ]
    assert tokens[0] and tokens[1] and not tokens[0] & tokens[1]
