"""Explore: what others may see of published images, the sorts, filters and keyset pages,
likes and favourites toggled from the page, and the constant cost of a page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse, set_script_prefix
from django.utils import timezone

from sharing.models import Favourite, Like, Publication, PublicationDay, View

from .conftest import client_for
from .factories import ImageFactory, PublicationFactory, UserFactory

TILE = re.compile(r'id="publication-([0-9a-f-]{36})"')
NEXT = re.compile(r'hx-get="[^"?]*\?([^"]*)"')


def tiles(response) -> list[str]:
    return TILE.findall(response.content.decode())


def walk_pages(client, url: str, query: str = "") -> list[str]:
    """Every tile's id over all the pages, following the "more" links as the page's htmx does."""
    seen: list[str] = []
    response = client.get(f"{url}?{query}" if query else url)
    for _page in range(50):
        assert response.status_code == 200
        seen += tiles(response)
        more = NEXT.search(response.content.decode())
        if not more:
            return seen
        response = client.get(f"{url}?{more.group(1).replace('&amp;', '&')}", HTTP_HX_REQUEST="true")
    raise AssertionError("the pages never end")


@pytest.fixture
def author(db):
    return UserFactory()


@pytest.fixture
def published(author):
    return PublicationFactory(image__task__owner=author, title="Harbour at dawn")


def publication_urls(publication_id) -> dict[str, tuple[str, str]]:
    return {
        name: (method, reverse(f"sharing:{name}", args=[publication_id]))
        for name, method in (
            ("publication", "get"),
            ("publication_file", "get"),
            ("publication_thumbnail", "get"),
            ("like", "post"),
            ("favourite", "post"),
        )
    }


def counts(publication) -> tuple[int, ...]:
    publication.refresh_from_db()
    return (publication.like_count, publication.favourite_count, publication.view_count, publication.download_count)


# --- isolation ---------------------------------------------------------------------------------


def test_an_unpublished_image_is_never_visible_to_others(author, auth_client):
    image = ImageFactory(task__owner=author)
    for name, (method, url) in publication_urls(image.pk).items():
        assert getattr(auth_client, method)(url).status_code == 404, name
    for page in ("sharing:explore", "sharing:liked", "sharing:favourites"):
        assert str(image.pk) not in auth_client.get(reverse(page)).content.decode()
    assert not Like.objects.exists() and not Favourite.objects.exists() and not View.objects.exists()


def test_a_published_image_shows_on_explore_and_its_pages_and_files_answer(published, auth_client):
    response = auth_client.get(reverse("sharing:explore"))
    assert tiles(response) == [str(published.pk)]
    assert "Harbour at dawn" in response.content.decode()
    for name, (method, url) in publication_urls(published.pk).items():
        if method == "get":
            assert auth_client.get(url).status_code == 200, name


def test_after_unpublishing_every_old_url_is_a_404_at_once(published, auth_client):
    auth_client.post(reverse("sharing:like", args=[published.pk]))
    auth_client.post(reverse("sharing:favourite", args=[published.pk]))
    pk = published.pk
    published.delete()
    for name, (method, url) in publication_urls(pk).items():
        assert getattr(auth_client, method)(url).status_code == 404, name
    for page in ("sharing:explore", "sharing:liked", "sharing:favourites"):
        assert tiles(auth_client.get(reverse(page))) == []


def test_a_hidden_publication_vanishes_from_explore_and_its_pages_404_but_stays_in_the_gallery(
    published, author, auth_client
):
    auth_client.post(reverse("sharing:like", args=[published.pk]))
    before = counts(published)
    Publication.objects.filter(pk=published.pk).update(hidden_at=timezone.now(), hidden_reason="spam")
    assert tiles(auth_client.get(reverse("sharing:explore"))) == []
    assert tiles(auth_client.get(reverse("sharing:liked"))) == []
    for name, (method, url) in publication_urls(published.pk).items():
        assert getattr(auth_client, method)(url).status_code == 404, name
    assert counts(published) == before
    assert Like.objects.count() == 1  # the unlike POST above changed nothing
    gallery = client_for(author).get(reverse("generator:gallery"))
    assert str(published.image_id) in gallery.content.decode()


@pytest.mark.parametrize("verb", ["like", "favourite"])
def test_reacting_to_a_nonexistent_id_is_a_404_and_changes_nothing(published, auth_client, verb):
    import uuid

    response = auth_client.post(reverse(f"sharing:{verb}", args=[uuid.uuid4()]))
    assert response.status_code == 404
    assert counts(published) == (0, 0, 0, 0)
    assert not Like.objects.exists() and not Favourite.objects.exists()


def test_signed_out_visitors_are_sent_to_sign_in(published):
    anonymous = Client()
    urls = [reverse(name) for name in ("sharing:explore", "sharing:liked", "sharing:favourites")]
    urls += [url for _method, url in publication_urls(published.pk).values()]
    for url in urls:
        response = anonymous.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), url
    assert anonymous.post(reverse("sharing:like", args=[published.pk])).status_code == 302
    assert counts(published) == (0, 0, 0, 0)


def test_sharing_off_makes_every_explore_url_a_404(published, auth_client, settings):
    settings.SHARING = "off"
    for name in ("sharing:explore", "sharing:liked", "sharing:favourites"):
        assert auth_client.get(reverse(name)).status_code == 404
    for name, (method, url) in publication_urls(published.pk).items():
        assert getattr(auth_client, method)(url).status_code == 404, name
    assert counts(published) == (0, 0, 0, 0)
    assert 'href="/explore/"' not in auth_client.get(reverse("generator:gallery")).content.decode()


def test_the_navigation_links_to_explore_when_sharing_is_on(auth_client):
    assert 'href="/explore/"' in auth_client.get(reverse("generator:gallery")).content.decode()


def test_a_hidden_prompt_is_neither_shown_nor_searchable_nor_in_the_file(author, auth_client):
    secret = PublicationFactory(image__task__owner=author, image__task__prompt="zebra secret words", show_prompt=False)
    assert secret.prompt == ""
    page = auth_client.get(reverse("sharing:publication", args=[secret.pk])).content.decode()
    assert "zebra" not in page
    assert tiles(auth_client.get(reverse("sharing:explore"), {"q": "zebra"})) == []
    original = auth_client.get(reverse("sharing:publication_file", args=[secret.pk]), {"download": "1"})
    assert original.status_code == 200 and b"zebra" not in original.content


def test_titles_and_prompts_are_escaped(author, auth_client):
    evil = PublicationFactory(image__task__owner=author, title="<script>alert(1)</script>")
    page = auth_client.get(reverse("sharing:publication", args=[evil.pk])).content.decode()
    explore = auth_client.get(reverse("sharing:explore")).content.decode()
    assert "<script>alert(1)" not in page and "<script>alert(1)" not in explore
    assert "&lt;script&gt;" in explore


# --- likes and favourites from the page ----------------------------------------------------------


def test_a_like_toggles_in_place_with_htmx_and_shows_the_new_count(published, auth_client):
    url = reverse("sharing:like", args=[published.pk])
    response = auth_client.post(url, {"wanted": "1"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert 'aria-pressed="true"' in response.content.decode() and ">1</button>" in response.content.decode()
    # The same form sent twice (a double click) still means "like": one like.
    auth_client.post(url, {"wanted": "1"}, HTTP_HX_REQUEST="true")
    assert counts(published)[0] == 1
    response = auth_client.post(url, {"wanted": "0"}, HTTP_HX_REQUEST="true")
    assert 'aria-pressed="false"' in response.content.decode()
    assert counts(published)[0] == 0


def test_without_javascript_a_like_is_a_post_that_comes_back_to_the_page(published, auth_client):
    explore = reverse("sharing:explore") + "?sort=liked"
    response = auth_client.post(reverse("sharing:like", args=[published.pk]), {"next": explore})
    assert response.status_code == 302 and response["Location"] == explore
    elsewhere = auth_client.post(reverse("sharing:favourite", args=[published.pk]), {"next": "https://evil.example/"})
    assert elsewhere["Location"] == reverse("sharing:publication", args=[published.pk])
    assert counts(published)[:2] == (1, 1)


def test_a_like_needs_the_csrf_token(published, user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(reverse("sharing:like", args=[published.pk])).status_code == 403
    assert counts(published) == (0, 0, 0, 0)


def test_liked_and_favourites_list_the_viewers_own_newest_first(author, user, auth_client):
    first, second, third = (PublicationFactory(image__task__owner=author) for _ in range(3))
    auth_client.post(reverse("sharing:like", args=[first.pk]))
    auth_client.post(reverse("sharing:like", args=[third.pk]))
    auth_client.post(reverse("sharing:favourite", args=[second.pk]))
    client_for(author).post(reverse("sharing:like", args=[second.pk]))  # someone else's like
    assert tiles(auth_client.get(reverse("sharing:liked"))) == [str(third.pk), str(first.pk)]
    assert tiles(auth_client.get(reverse("sharing:favourites"))) == [str(second.pk)]
    assert tiles(client_for(author).get(reverse("sharing:liked"))) == [str(second.pk)]


def test_the_liked_list_pages_without_gaps(author, user, auth_client):
    from sharing import reactions

    for publication in PublicationFactory.bulk_create_batch(60, owner=author):
        reactions.like(user, publication, True)
    seen = walk_pages(auth_client, reverse("sharing:liked"))
    assert len(seen) == 60 == len(set(seen))


# --- sorts, filters and keyset pages -----------------------------------------------------------


def test_latest_pages_through_ties_without_duplicates_or_gaps(author, auth_client):
    same_time = timezone.now()
    rows = PublicationFactory.bulk_create_batch(100, owner=author, newest=same_time, step=timedelta(0))
    seen = walk_pages(auth_client, reverse("sharing:explore"))
    assert len(seen) == 100 == len(set(seen))
    assert seen == sorted((str(row.pk) for row in rows), key=lambda pk: Publication.objects.get(pk=pk).id, reverse=True)


def test_most_liked_orders_by_likes_then_newest_and_pages_through_ties(author, auth_client):
    rows = PublicationFactory.bulk_create_batch(110, owner=author)  # newest first, a second apart
    for index, row in enumerate(rows):
        row.like_count = index % 3  # many ties on every count
    Publication.objects.bulk_update(rows, ["like_count"])
    seen = walk_pages(auth_client, reverse("sharing:explore"), "sort=liked")
    expected = sorted(rows, key=lambda row: (row.like_count, row.published_at, str(row.pk)), reverse=True)
    assert seen == [str(row.pk) for row in expected]


def test_popular_orders_by_score_then_newest(author, auth_client):
    old, new = PublicationFactory.bulk_create_batch(2, owner=author)
    Publication.objects.filter(pk=old.pk).update(popular_score=5)
    Publication.objects.filter(pk=new.pk).update(popular_score=5)
    top = PublicationFactory(image__task__owner=author)
    Publication.objects.filter(pk=top.pk).update(popular_score=9)
    assert tiles(auth_client.get(reverse("sharing:explore"), {"sort": "popular"})) == [
        str(top.pk),
        str(old.pk) if old.published_at > new.published_at else str(new.pk),
        str(new.pk) if old.published_at > new.published_at else str(old.pk),
    ]


def test_filters_by_model_and_by_all_words_of_title_or_shown_prompt(author, auth_client):
    kite = PublicationFactory(image__task__owner=author, image__task__prompt="A red KITE over dunes")
    other_model = PublicationFactory(
        image__task__owner=author, image__task__model="other-v2", image__task__prompt="a red kite at sea"
    )
    titled = PublicationFactory(image__task__owner=author, title="Red kite", show_prompt=False)
    explore = reverse("sharing:explore")
    assert set(tiles(auth_client.get(explore, {"q": "kite red"}))) == {
        str(kite.pk),
        str(other_model.pk),
        str(titled.pk),
    }
    assert tiles(auth_client.get(explore, {"q": "red dunes"})) == [str(kite.pk)]
    assert tiles(auth_client.get(explore, {"model": "offline:other-v2"})) == [str(other_model.pk)]
    assert tiles(auth_client.get(explore, {"model": "offline:sketch-v1", "q": "sea"})) == []
    assert tiles(auth_client.get(explore, {"model": "no-colon-at-all"})) == []


@pytest.mark.parametrize("cursor", ["garbage", "x" * 5000, "W10", "%00", "eyJhIjoxfQ:1abc:def"])
def test_a_bad_cursor_is_the_first_page_never_an_error(published, auth_client, cursor):
    for sort in ("latest", "liked", "popular"):
        response = auth_client.get(reverse("sharing:explore"), {"sort": sort, "after": cursor})
        assert response.status_code == 200 and tiles(response) == [str(published.pk)]
        assert auth_client.get(reverse("sharing:liked"), {"after": cursor}).status_code == 200


def test_a_cursor_of_one_sort_is_no_cursor_in_another(author, auth_client):
    PublicationFactory.bulk_create_batch(60, owner=author)
    first = auth_client.get(reverse("sharing:explore"))
    cursor = NEXT.search(first.content.decode()).group(1).replace("&amp;", "&").split("after=")[1]
    liked = auth_client.get(reverse("sharing:explore"), {"sort": "liked", "after": cursor})
    assert tiles(liked)[:48] == tiles(auth_client.get(reverse("sharing:explore"), {"sort": "liked"}))


# --- the cost of a page --------------------------------------------------------------------


@pytest.mark.parametrize("sort", ["latest", "liked", "popular"])
def test_an_explore_page_costs_the_same_queries_at_10_and_500_images(
    author, user, auth_client, sort, django_assert_num_queries
):
    from sharing import reactions

    costs = []
    for total in (10, 500):
        Publication.objects.all().delete()
        rows = PublicationFactory.bulk_create_batch(total, owner=author)
        reactions.like(user, rows[0], True)
        reactions.favourite(user, rows[1], True)
        url = reverse("sharing:explore") + f"?sort={sort}"
        auth_client.get(url)  # the session and the model choices are cached now
        # The user, the page (authors, images and the viewer's likes and favourites joined in).
        with django_assert_num_queries(2):
            first = auth_client.get(url)
        more = NEXT.search(first.content.decode())
        if more:
            with django_assert_num_queries(2):
                auth_client.get(
                    f"{reverse('sharing:explore')}?{more.group(1).replace('&amp;', '&')}", HTTP_HX_REQUEST="true"
                )
        costs.append(len(tiles(first)))
    assert costs == [10, 48]


def test_the_liked_page_costs_the_same_queries_at_10_and_500_likes(
    author, user, auth_client, django_assert_num_queries
):
    from sharing import reactions

    for total in (10, 500):
        Like.objects.all().delete()
        for row in PublicationFactory.bulk_create_batch(total, owner=author)[: min(total, 60)]:
            reactions.like(user, row, True)
        auth_client.get(reverse("sharing:liked"))
        with django_assert_num_queries(2):
            assert auth_client.get(reverse("sharing:liked")).status_code == 200


def test_a_publication_page_records_a_view_and_shows_the_settings_when_shown(published, auth_client):
    page = auth_client.get(reverse("sharing:publication", args=[published.pk])).content.decode()
    assert published.prompt in page and "Harbour at dawn" in page
    assert counts(published)[2] == 1
    assert PublicationDay.objects.get(publication=published).views == 1


# --- the links and forms of a tile, worked out once a page --------------------------------------

FORM = re.compile(
    r'<form class="explore-react" method="post" action="([^"]+)" hx-post="([^"]+)"[^>]*>'
    r'<input type="hidden" name="csrfmiddlewaretoken" value="([^"]+)">\s*'
    r'<input type="hidden" name="wanted" value="([01])">\s*<input type="hidden" name="next" value="([^"]*)">'
)


@pytest.mark.parametrize("name", ["publication", "publication_thumbnail", "like", "favourite"])
def test_a_publications_links_are_what_reverse_gives_also_under_a_script_prefix(published, name):
    attribute = {"publication": "page_url", "publication_thumbnail": "thumbnail_url"}.get(name, f"{name}_url")
    assert getattr(published, attribute) == reverse(f"sharing:{name}", args=[published.pk])
    set_script_prefix("/studio/")
    try:
        assert getattr(published, attribute) == reverse(f"sharing:{name}", args=[published.pk])
        assert getattr(published, attribute).startswith("/studio/explore/")
    finally:
        set_script_prefix("/")


def test_every_form_on_an_explore_page_posts_with_its_token_and_comes_back_without_javascript(author, user):
    first, second = (PublicationFactory(image__task__owner=author) for _ in range(2))
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    page = reverse("sharing:explore") + "?sort=liked"
    html = client.get(page).content.decode()
    forms = FORM.findall(html)
    wanted_urls = {
        reverse(f"sharing:{verb}", args=[pub.pk]) for pub in (first, second) for verb in ("like", "favourite")
    }
    assert {action for action, *_rest in forms} == wanted_urls and len(forms) == 4
    for action, hx_post, token, wanted, back in forms:
        assert hx_post == action and wanted == "1" and back.replace("&amp;", "&") == page
        answer = client.post(action, {"csrfmiddlewaretoken": token, "wanted": wanted, "next": page})
        assert answer.status_code == 302 and answer["Location"] == page
    assert counts(first)[:2] == counts(second)[:2] == (1, 1)
    # The tiles link each publication's page and thumbnail.
    for pub in (first, second):
        assert f'href="{reverse("sharing:publication", args=[pub.pk])}"' in html
        assert f'src="{reverse("sharing:publication_thumbnail", args=[pub.pk])}"' in html


def test_a_toggled_form_keeps_its_token_and_where_it_comes_back_to(published, user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    page = reverse("sharing:explore") + "?sort=popular"
    (action, _hx, token, _wanted, _back), *_rest = FORM.findall(client.get(page).content.decode())
    answer = client.post(action, {"csrfmiddlewaretoken": token, "wanted": "1", "next": page}, HTTP_HX_REQUEST="true")
    (_action, _hx, fresh_token, wanted, back), *_more = FORM.findall(answer.content.decode())
    assert wanted == "0" and back.replace("&amp;", "&") == page
    again = client.post(
        action, {"csrfmiddlewaretoken": fresh_token, "wanted": "0", "next": back}, HTTP_HX_REQUEST="true"
    )
    assert again.status_code == 200 and counts(published)[0] == 0
