"""Sharing in the JSON API: publishing one's own images, Explore with likes and favourites and
its files, and share links; another person's things are 404s that change nothing, and the
SHARING switch removes the endpoints."""

from __future__ import annotations

import logging
import uuid

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Scope
from accounts.tokens import create_token
from sharing.links import digest
from sharing.models import Favourite, Like, Publication, SharedImage, ShareLink

from .factories import ImageFactory, PublicationFactory, UserFactory

JSON = "application/json"


@pytest.fixture(autouse=True)
def public_sharing(settings):
    settings.SHARING = "public"


@pytest.fixture
def image(user):
    return ImageFactory(task__owner=user, task__prompt="a red lighthouse at dusk")


@pytest.fixture
def others_image(other_user):
    return ImageFactory(task__owner=other_user, task__prompt="someone else's tidepool")


@pytest.fixture
def published(other_user):
    """Another person's visible publication, prompt shown."""
    return PublicationFactory(image__task__owner=other_user, image__task__prompt="a harbour at dawn", title="Harbour")


def bearer(user) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {create_token(user, 'script').plaintext}"}


def post(client: Client, url: str, body: object = None, **headers):
    """POST `body` as JSON; None: an empty body (as `curl -X POST` sends)."""
    return client.post(url, "" if body is None else body, content_type=JSON, **headers)


def publish_url(image_id) -> str:
    return reverse("api:image_publish", args=[image_id])


def like_url(publication_id) -> str:
    return reverse("api:explore_like", args=[publication_id])


def favourite_url(publication_id) -> str:
    return reverse("api:explore_favourite", args=[publication_id])


def explore_ids(client: Client, query: str = "") -> list[str]:
    response = client.get(reverse("api:explore") + query)
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["results"]]


def publication_state(publication: Publication) -> tuple:
    publication.refresh_from_db()
    return (publication.title, publication.show_prompt, publication.like_count, publication.favourite_count)


# --- publishing ----------------------------------------------------------------------------------


def test_publishing_answers_201_then_200_and_keeps_the_choices_not_sent(auth_client, image):
    first = post(auth_client, publish_url(image.pk), {"title": "  Lighthouse  ", "show_prompt": False})
    assert first.status_code == 201
    body = first.json()
    publication = Publication.objects.get(image=image)
    assert body["id"] == str(publication.pk) and body["image_id"] == str(image.pk)
    assert body["title"] == "Lighthouse" and body["show_prompt"] is False
    assert body["like_count"] == 0 and body["hidden"] is False and body["hidden_reason"] is None
    assert publication.prompt == ""  # kept private

    again = post(auth_client, publish_url(image.pk), {"show_prompt": True})
    assert again.status_code == 200
    assert again.json()["title"] == "Lighthouse" and again.json()["show_prompt"] is True
    assert again.json()["published_at"] == body["published_at"]
    assert Publication.objects.get(image=image).prompt == "a red lighthouse at dusk"


def test_publishing_without_a_body_uses_the_defaults(user, image):
    response = post(Client(), publish_url(image.pk), **bearer(user))
    assert response.status_code == 201
    assert response.json()["title"] == "" and response.json()["show_prompt"] is True


def test_the_author_sees_why_staff_hid_the_image(auth_client, image):
    PublicationFactory(image=image).hide(None, "Off topic")
    body = post(auth_client, publish_url(image.pk), {"title": "Again"}).json()
    assert body["hidden"] is True and body["hidden_reason"] == "Off topic"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "x" * 121}, "title"),
        ({"title": 7}, "title"),
        ({"title": "bad\x00title"}, "title"),
        ({"title": "lone \ud800"}, "title"),
        ({"show_prompt": "yes"}, "show_prompt"),
        ([], "body"),
    ],
)
def test_a_bad_publish_body_is_a_400_and_changes_nothing(auth_client, image, body, field):
    response = post(auth_client, publish_url(image.pk), body)
    assert response.status_code == 400
    assert response.json()["error"] == "validation_error" and field in response.json()["details"]
    assert not Publication.objects.exists()


def test_unpublishing_takes_the_image_off_explore_with_its_likes(auth_client, other_client, image):
    publication = PublicationFactory(image=image)
    post(other_client, like_url(publication.pk))
    assert explore_ids(other_client) == [str(publication.pk)]

    assert auth_client.delete(publish_url(image.pk)).status_code == 204
    assert not Publication.objects.exists() and not Like.objects.exists()
    assert explore_ids(other_client) == []
    assert auth_client.delete(publish_url(image.pk)).status_code == 204  # already unpublished


def test_another_persons_or_an_unknown_image_is_a_404_and_nothing_changes(auth_client, others_image):
    publication = PublicationFactory(image=others_image, title="Theirs")
    before = publication_state(publication)
    for url in (publish_url(others_image.pk), publish_url(uuid.uuid4())):
        for response in (post(auth_client, url, {"title": "Mine now"}), auth_client.delete(url)):
            assert response.status_code == 404 and response.json()["error"] == "not_found"
    assert publication_state(publication) == before


def test_publishing_another_persons_unpublished_image_makes_nothing(auth_client, others_image):
    assert post(auth_client, publish_url(others_image.pk)).status_code == 404
    assert not Publication.objects.exists()


# --- Explore --------------------------------------------------------------------------------------


def test_explore_lists_visible_publications_with_the_callers_likes(user, auth_client, published):
    private = PublicationFactory(image__task__prompt="kept to myself", show_prompt=False, title="Quiet")
    Like.objects.create(user=user, publication=published)
    Publication.objects.filter(pk=published.pk).update(like_count=1)

    results = auth_client.get(reverse("api:explore")).json()["results"]
    by_id = {item["id"]: item for item in results}
    shown = by_id[str(published.pk)]
    assert shown["title"] == "Harbour" and shown["author"] == published.owner.username
    assert shown["prompt"] == "a harbour at dawn" and shown["provider"] == published.provider
    assert shown["liked"] is True and shown["favourited"] is False and shown["like_count"] == 1
    assert shown["url"] == reverse("api:explore_file", args=[published.pk])
    assert shown["thumbnail_url"] == reverse("api:explore_thumbnail", args=[published.pk])
    assert by_id[str(private.pk)]["prompt"] is None
    assert "kept to myself" not in auth_client.get(reverse("api:explore")).content.decode()


def test_an_unpublished_or_hidden_image_never_appears_on_explore(auth_client, others_image, published):
    hidden = PublicationFactory(image__task__owner=published.owner)
    hidden.hide(None, "spam")
    assert explore_ids(auth_client) == [str(published.pk)]
    body = auth_client.get(reverse("api:explore") + "?q=tidepool").content.decode()
    assert str(others_image.pk) not in body and "tidepool" not in body
    assert str(hidden.pk) not in auth_client.get(reverse("api:explore") + "?sort=popular").content.decode()


def test_explore_sorts_filters_and_walks_its_pages(auth_client, other_user):
    newer, older = PublicationFactory.bulk_create_batch(2, owner=other_user)  # newest first
    Publication.objects.filter(pk=older.pk).update(like_count=5, title="Storm")
    assert explore_ids(auth_client) == [str(newer.pk), str(older.pk)]
    assert explore_ids(auth_client, "?sort=liked") == [str(older.pk), str(newer.pk)]
    assert explore_ids(auth_client, "?q=storm") == [str(older.pk)]
    assert explore_ids(auth_client, f"?model={older.provider}:{older.model}") == [str(newer.pk), str(older.pk)]
    assert explore_ids(auth_client, "?model=nowhere:none") == []

    first = auth_client.get(reverse("api:explore") + "?limit=1").json()
    assert [item["id"] for item in first["results"]] == [str(newer.pk)] and first["next"]
    second = auth_client.get(reverse("api:explore") + f"?limit=1&cursor={first['next']}").json()
    assert [item["id"] for item in second["results"]] == [str(older.pk)] and second["next"] is None


def test_a_cursor_not_given_out_is_the_first_page_as_on_the_web(auth_client, published):
    assert explore_ids(auth_client, "?cursor=not-ours") == [str(published.pk)]


@pytest.mark.parametrize(
    ("query", "field"), [("?sort=oldest", "sort"), ("?limit=0", "limit"), ("?limit=101", "limit"), ("?q=%00", "q")]
)
def test_a_bad_explore_query_is_a_400(auth_client, published, query, field):
    response = auth_client.get(reverse("api:explore") + query)
    assert response.status_code == 400 and field in response.json()["details"]


def test_explore_costs_the_same_queries_for_10_or_200_published(user, other_user, django_assert_num_queries):
    client, headers = Client(), bearer(user)
    client.get(reverse("api:explore"), **headers)  # the token's first use records it (once a minute)
    for published in (10, 200):
        PublicationFactory.bulk_create_batch(published - Publication.objects.count(), owner=other_user)
        # The token with its owner, then the page with the caller's likes and favourites.
        with django_assert_num_queries(2):
            response = client.get(reverse("api:explore") + "?limit=100", **headers)
        assert len(response.json()["results"]) == min(published, 100)


def test_explore_files_are_served_to_tokens_only_while_visible(user, published):
    client, headers = Client(), bearer(user)
    original = client.get(reverse("api:explore_file", args=[published.pk]), **headers)
    assert original.status_code == 200 and original["Content-Type"] == "image/png"
    thumbnail = client.get(reverse("api:explore_thumbnail", args=[published.pk]), **headers)
    assert thumbnail.status_code == 200 and thumbnail["Content-Type"] == "image/webp"
    assert client.get(reverse("api:explore_file", args=[published.pk]) + "?download=1", **headers).status_code == 200
    published.refresh_from_db()
    assert published.download_count == 1

    published.hide(None, "spam")
    for name in ("api:explore_file", "api:explore_thumbnail"):
        response = client.get(reverse(name, args=[published.pk]), **headers)
        assert response.status_code == 404 and response.json()["error"] == "not_found"


def test_an_unpublished_images_files_are_404_under_any_id(user, others_image):
    client, headers = Client(), bearer(user)
    for name in ("api:explore_file", "api:explore_thumbnail"):
        for some_id in (others_image.pk, uuid.uuid4()):
            assert client.get(reverse(name, args=[some_id]), **headers).status_code == 404


def test_the_file_of_a_private_prompt_carries_no_prompt(auth_client, other_user):
    publication = PublicationFactory(
        image__task__owner=other_user, image__task__prompt="secret recipe", show_prompt=False
    )
    response = auth_client.get(reverse("api:explore_file", args=[publication.pk]))
    assert response.status_code == 200 and b"secret recipe" not in response.content


# --- likes and favourites -------------------------------------------------------------------------


def test_liking_and_unliking(auth_client, published):
    assert post(auth_client, like_url(published.pk)).json() == {"liked": True, "like_count": 1}
    assert post(auth_client, like_url(published.pk), {"liked": True}).json() == {"liked": True, "like_count": 1}
    assert post(auth_client, like_url(published.pk), {"liked": False}).json() == {"liked": False, "like_count": 0}
    assert not Like.objects.exists()


def test_keeping_and_dropping_a_favourite(auth_client, published):
    kept = post(auth_client, favourite_url(published.pk), {"favourited": True}).json()
    assert kept == {"favourited": True, "favourite_count": 1} and Favourite.objects.count() == 1
    assert explore_ids(auth_client) == [str(published.pk)]
    assert auth_client.get(reverse("api:explore")).json()["results"][0]["favourited"] is True
    dropped = post(auth_client, favourite_url(published.pk), {"favourited": False}).json()
    assert dropped == {"favourited": False, "favourite_count": 0}


def test_a_like_that_is_not_a_boolean_is_a_400(auth_client, published):
    response = post(auth_client, like_url(published.pk), {"liked": "yes"})
    assert response.status_code == 400 and "liked" in response.json()["details"]
    assert publication_state(published)[2] == 0


def test_liking_an_unpublished_hidden_or_unknown_image_is_a_404_and_changes_nothing(
    auth_client, others_image, published
):
    published.hide(None, "spam")
    for some_id in (published.pk, others_image.pk, uuid.uuid4()):
        for url in (like_url(some_id), favourite_url(some_id)):
            response = post(auth_client, url)
            assert response.status_code == 404 and response.json()["error"] == "not_found"
    assert publication_state(published)[2:] == (0, 0)
    assert not Like.objects.exists() and not Favourite.objects.exists()


# --- share links ----------------------------------------------------------------------------------


def create_link(client: Client, body: dict, **headers):
    return post(client, reverse("api:share_links"), body, **headers)


def test_a_new_link_shows_its_url_once_and_stores_only_its_hash(auth_client, client, completed_task, caplog):
    images = list(completed_task.ordered_images)
    caplog.set_level(logging.DEBUG)
    response = create_link(
        auth_client,
        {"image_ids": [str(images[1].pk), str(images[0].pk)], "title": "Album", "expires_in_days": 7},
    )
    assert response.status_code == 201 and response["Cache-Control"] == "no-store"
    body = response.json()
    link = ShareLink.objects.get()
    assert body["id"] == str(link.pk) and body["title"] == "Album" and body["active"] is True
    assert body["image_ids"] == [str(images[1].pk), str(images[0].pk)] and body["expires_at"]
    secret = body["url"].rstrip("/").rsplit("/", 1)[1]
    assert body["url"].startswith("http://testserver/") and link.digest == digest(secret)
    assert secret not in {str(value) for value in ShareLink.objects.values().get().values()}
    assert secret not in caplog.text and body["prefix"] in caplog.text

    assert client.get(body["url"]).status_code == 200  # anyone holding it
    listed = auth_client.get(reverse("api:share_links")).json()
    assert [item["id"] for item in listed["results"]] == [str(link.pk)]
    assert "url" not in listed["results"][0] and secret not in str(listed)


def test_a_link_to_another_persons_image_is_a_404_and_nothing_is_made(auth_client, image, others_image):
    for ids in ([others_image.pk], [image.pk, others_image.pk], [uuid.uuid4()]):
        response = create_link(auth_client, {"image_ids": [str(value) for value in ids]})
        assert response.status_code == 404 and response.json()["error"] == "not_found"
    assert not ShareLink.objects.exists() and not SharedImage.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"image_ids": []}, "image_ids"),
        ({"image_ids": "all"}, "image_ids"),
        ({"image_ids": ["not-a-uuid"]}, "image_ids"),
        ({"image_ids": [7]}, "image_ids"),
        ({"image_ids": [str(uuid.uuid4()) for _ in range(101)]}, "image_ids"),
        ({"expires_in_days": 2}, "expires_in_days"),
        ({"expires_in_days": True}, "expires_in_days"),
        ({"title": "x" * 121}, "title"),
        ({"show_prompt": "no"}, "show_prompt"),
    ],
)
def test_a_bad_link_request_is_a_400_and_nothing_is_made(auth_client, image, body, field):
    response = create_link(auth_client, {"image_ids": [str(image.pk)], **body})
    assert response.status_code == 400
    assert response.json()["error"] == "validation_error" and field in response.json()["details"]
    assert not ShareLink.objects.exists()


def test_revoking_my_link_stops_it(auth_client, client, image):
    body = create_link(auth_client, {"image_ids": [str(image.pk)]}).json()
    revoke = reverse("api:share_link_revoke", args=[body["id"]])
    assert auth_client.delete(revoke).status_code == 204
    assert client.get(body["url"]).status_code == 404
    assert auth_client.get(reverse("api:share_links")).json()["results"][0]["active"] is False
    assert auth_client.delete(revoke).status_code == 204  # already revoked


def test_other_peoples_links_are_neither_listed_nor_revocable(auth_client, other_client, client, others_image):
    body = create_link(other_client, {"image_ids": [str(others_image.pk)]}).json()
    assert auth_client.get(reverse("api:share_links")).json() == {"results": [], "next": None}
    response = auth_client.delete(reverse("api:share_link_revoke", args=[body["id"]]))
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    assert ShareLink.objects.get().revoked_at is None and client.get(body["url"]).status_code == 200


# --- the switch and tokens ------------------------------------------------------------------------


def every_endpoint(image_id, publication_id, link_id) -> list[tuple[str, str]]:
    return [
        ("post", publish_url(image_id)),
        ("delete", publish_url(image_id)),
        ("get", reverse("api:explore")),
        ("post", like_url(publication_id)),
        ("post", favourite_url(publication_id)),
        ("get", reverse("api:explore_file", args=[publication_id])),
        ("get", reverse("api:explore_thumbnail", args=[publication_id])),
        ("get", reverse("api:share_links")),
        ("post", reverse("api:share_links")),
        ("delete", reverse("api:share_link_revoke", args=[link_id])),
    ]


def test_with_sharing_off_every_endpoint_is_a_404_signed_in_or_not(settings, auth_client, client, image, published):
    settings.SHARING = "off"
    link = ShareLink.objects.create(owner=image.owner, prefix="shr_abcd", digest="0" * 64)
    for method, url in every_endpoint(image.pk, published.pk, link.pk):
        for someone in (auth_client, client):
            response = getattr(someone, method)(url)
            assert response.status_code == 404 and response.json()["error"] == "not_found", (method, url)
    assert not Publication.objects.filter(image=image).exists() and Publication.objects.count() == 1


def test_with_sharing_for_the_team_the_share_link_endpoints_are_404s(settings, auth_client, image, published):
    settings.SHARING = "team"
    assert auth_client.get(reverse("api:share_links")).status_code == 404
    assert create_link(auth_client, {"image_ids": [str(image.pk)]}).status_code == 404
    assert not ShareLink.objects.exists()
    assert explore_ids(auth_client) == [str(published.pk)]
    assert post(auth_client, publish_url(image.pk)).status_code == 201


def test_a_metrics_only_token_is_refused(db, image, published):
    staff = UserFactory(is_staff=True)
    metrics = create_token(staff, "prometheus", scopes=frozenset({Scope.METRICS})).plaintext
    client = Client(HTTP_AUTHORIZATION=f"Bearer {metrics}")
    for method, url in every_endpoint(image.pk, published.pk, uuid.uuid4()):
        response = getattr(client, method)(url)
        assert response.status_code == 403 and response.json()["error"] == "token_scope", (method, url)
    assert Publication.objects.count() == 1 and not ShareLink.objects.exists()
