"""Share links: made by their owner for their own images, shown once, stored hashed; opened by
anyone holding them, without an account; gone (404) the moment they are revoked or expire;
limited per address; and nowhere at all unless SHARING=public."""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from generator.models import Image
from sharing import links
from sharing.models import SharedImage, ShareLink

from .factories import ImageFactory, UserFactory

pytestmark = pytest.mark.usefixtures("public_sharing", "ratelimit_clock")


@pytest.fixture
def public_sharing(settings):
    settings.SHARING = "public"


@pytest.fixture
def images(completed_task) -> list[Image]:
    return list(completed_task.ordered_images)


@pytest.fixture
def new_link(user, images) -> links.NewLink:
    return links.create_link(user, images, title="Lighthouses", show_prompt=True, expires_in_days=None)


@pytest.fixture
def anonymous() -> Client:
    return Client()


def page_url(token: str) -> str:
    return reverse("sharing:shared", args=[token])


def file_url(token: str, position: int = 1) -> str:
    return reverse("sharing:shared_file", args=[token, position])


def thumbnail_url(token: str, position: int = 1) -> str:
    return reverse("sharing:shared_thumbnail", args=[token, position])


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


class MetaTags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attributes = dict(attrs)
        key = attributes.get("property") or attributes.get("name")
        if tag == "meta" and key:
            self.found[key] = attributes.get("content") or ""


def meta_tags(html: str) -> dict[str, str]:
    parser = MetaTags()
    parser.feed(html)
    return parser.found


def make_link_through_the_pages(client: Client, images: list[Image], **fields) -> str:
    """POST the form as the page does; the URL shown once on the list page."""
    data = {"image": [str(image.pk) for image in images], "title": "", "expires_in": "", "show_prompt": "on", **fields}
    response = client.post(reverse("sharing:link_create"), data)
    assert response.status_code == 302, response.content[:300]
    listing = client.get(response["Location"]).content.decode()
    match = re.search(r'id="new-link-url" readonly value="([^"]+)"', listing)
    assert match, "the new link's URL is on the list page"
    return match.group(1)


# --- making, and the secret ---------------------------------------------------------------------


def test_the_secret_is_stored_hashed_shown_once_and_never_logged(auth_client, user, images, caplog):
    caplog.set_level(logging.DEBUG)
    url = make_link_through_the_pages(auth_client, images, title="Cliffs")
    token = url.rstrip("/").rsplit("/", 1)[1]
    assert url.startswith("http://testserver/s/shr_") and links.TOKEN_PATTERN.fullmatch(token)
    link = ShareLink.objects.get(owner=user)
    assert link.digest == hashlib.sha256(token.encode()).hexdigest() and link.prefix == token[:8]
    stored = [str(value) for row in ShareLink.objects.values() for value in row.values()]
    stored += [str(value) for row in SharedImage.objects.values() for value in row.values()]
    stored += [session.get_decoded().__repr__() for session in Session.objects.all()]
    assert not [value for value in stored if token in value]
    assert token not in caplog.text and link.prefix in caplog.text
    assert token not in auth_client.get(reverse("sharing:links")).content.decode()  # shown once only
    assert link.title == "Cliffs" and list(link.entries.values_list("image_id", flat=True)) == [i.pk for i in images]


def test_a_link_to_another_persons_image_is_a_404_and_makes_nothing(auth_client, images, other_user):
    theirs = ImageFactory(task__owner=other_user)
    for ids in ([theirs.pk], [images[0].pk, theirs.pk], ["not-a-uuid"]):
        query = "&".join(f"image={value}" for value in ids)
        assert auth_client.get(reverse("sharing:link_create") + "?" + query).status_code == 404
        response = auth_client.post(reverse("sharing:link_create"), {"image": [str(i) for i in ids], "title": "x"})
        assert response.status_code == 404
    assert not ShareLink.objects.exists()


def test_more_than_a_hundred_images_is_a_form_error(auth_client, user):
    mine = ImageFactory.bulk_create_batch(101, owner=user)
    ids = [str(image.pk) for image in mine]
    for response in (
        auth_client.get(reverse("sharing:link_create"), {"image": ids}),
        auth_client.post(reverse("sharing:link_create"), {"image": ids, "title": "too many"}),
    ):
        assert response.status_code == 400
        assert "at most 100 images" in response.content.decode()
    assert not ShareLink.objects.exists()
    response = auth_client.post(reverse("sharing:link_create"), {"image": ids[:100], "show_prompt": "on"})
    assert response.status_code == 302 and ShareLink.objects.get().entries.count() == 100


def test_the_form_offers_the_chosen_images_and_defaults_to_showing_the_prompt(auth_client, images):
    response = auth_client.get(reverse("sharing:link_create"), {"image": [str(image.pk) for image in images]})
    html = response.content.decode()
    assert response.status_code == 200
    assert all(f'name="image" value="{image.pk}"' in html for image in images)
    assert re.search(r'<input type="checkbox" name="show_prompt"[^>]*checked', html)
    assert auth_client.get(reverse("sharing:link_create")).status_code == 400  # no image chosen


def test_the_expiry_choices_set_the_expiry(auth_client, user, images):
    before = timezone.now()
    make_link_through_the_pages(auth_client, images[:1], expires_in="7")
    link = ShareLink.objects.get(owner=user)
    assert before + timedelta(days=7) <= link.expires_at <= timezone.now() + timedelta(days=7)
    response = auth_client.post(reverse("sharing:link_create"), {"image": [str(images[0].pk)], "expires_in": "3"})
    assert response.status_code == 400 and ShareLink.objects.count() == 1


# --- the page anyone may open -------------------------------------------------------------------


def test_a_link_opens_without_an_account(anonymous, new_link, images):
    token = new_link.plaintext
    page = anonymous.get(page_url(token))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Lighthouses" in html and images[0].task.prompt in html
    assert "Sign out" not in html and reverse("generator:gallery") not in html  # no site navigation
    original = anonymous.get(file_url(token, 2))
    assert original.status_code == 200 and body(original) == images[1].file.open("rb").read()
    thumbnail = anonymous.get(thumbnail_url(token, 1))
    assert thumbnail.status_code == 200 and thumbnail["Content-Type"] == "image/webp"
    assert anonymous.get(file_url(token) + "?download=1")["Content-Disposition"].startswith("attachment")
    assert "sessionid" not in anonymous.cookies


def test_the_page_keeps_the_content_security_policy(anonymous, new_link):
    response = anonymous.get(page_url(new_link.plaintext))
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    html = response.content.decode()
    assert "<script" not in html and "style=" not in html and "<style" not in html
    assert response["Referrer-Policy"] == "no-referrer" and "noindex" in response["X-Robots-Tag"]
    assert meta_tags(html)["robots"].startswith("noindex")


def test_open_graph_tags_are_absolute_and_carry_the_prompt_when_shown(anonymous, new_link, images):
    token = new_link.plaintext
    tags = meta_tags(anonymous.get(page_url(token)).content.decode())
    assert tags["og:title"] == "Lighthouses" and tags["og:type"] == "website"
    assert tags["og:url"] == "http://testserver" + page_url(token)
    assert tags["og:image"] == "http://testserver" + file_url(token, 1)
    assert tags["og:description"] == images[0].task.prompt
    assert tags["twitter:card"] == "summary_large_image"


def test_a_hidden_prompt_is_nowhere_on_the_page_its_tags_or_its_files(anonymous, user, images):
    prompt = images[0].task.prompt
    assert prompt.encode() in images[0].file.open("rb").read()  # the stored PNG carries it
    token = links.create_link(user, images, show_prompt=False, expires_in_days=None).plaintext
    html = anonymous.get(page_url(token)).content.decode()
    assert prompt not in html and "lighthouse" not in html
    assert "og:description" not in meta_tags(html)
    for query in ("", "?download=1", "?download=1&metadata=1", "?download&metadata=0", "?metadata=1"):
        response = anonymous.get(file_url(token) + query)
        assert response.status_code == 200, query
        assert body(response).startswith(b"\x89PNG") and b"lighthouse" not in body(response), query


def test_views_of_the_page_are_counted_not_its_files(anonymous, new_link):
    token = new_link.plaintext
    for _ in range(3):
        anonymous.get(page_url(token))
    anonymous.get(file_url(token))
    anonymous.get(thumbnail_url(token))
    new_link.link.refresh_from_db()
    assert new_link.link.view_count == 3


# --- gone at once -------------------------------------------------------------------------------


def test_a_revoked_link_is_a_404_on_its_next_request(auth_client, anonymous, new_link):
    token = new_link.plaintext
    urls = [page_url(token), file_url(token), thumbnail_url(token)]
    etags = {url: anonymous.get(url)["ETag"] for url in urls}
    response = auth_client.post(reverse("sharing:link_revoke", args=[new_link.link.pk]))
    assert response.status_code == 302
    for url in urls:
        assert anonymous.get(url).status_code == 404, url
        assert anonymous.get(url, HTTP_IF_NONE_MATCH=etags[url]).status_code == 404, url  # no 304 for a copy
    assert "Revoked" in auth_client.get(reverse("sharing:links")).content.decode()


def test_revoking_with_htmx_swaps_the_row(auth_client, new_link):
    response = auth_client.post(reverse("sharing:link_revoke", args=[new_link.link.pk]), HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and html.startswith(f'<tr id="link-{new_link.link.pk}"')
    assert "Revoked" in html and "Revoke this link" not in html


def test_an_expired_link_is_a_404_from_its_expiry_on(anonymous, user, images, monkeypatch):
    start = timezone.now()
    token = links.create_link(user, images, expires_in_days=1).plaintext
    monkeypatch.setattr(timezone, "now", lambda: start + timedelta(days=1) - timedelta(seconds=1))
    assert anonymous.get(page_url(token)).status_code == 200
    monkeypatch.setattr(timezone, "now", lambda: start + timedelta(days=1, seconds=1))
    for url in (page_url(token), file_url(token), thumbnail_url(token)):
        assert anonymous.get(url).status_code == 404, url


def test_another_persons_link_cannot_be_revoked(other_client, anonymous, new_link):
    assert other_client.post(reverse("sharing:link_revoke", args=[new_link.link.pk])).status_code == 404
    new_link.link.refresh_from_db()
    assert new_link.link.revoked_at is None
    assert anonymous.get(page_url(new_link.plaintext)).status_code == 200
    assert "Lighthouses" not in other_client.get(reverse("sharing:links")).content.decode()


def test_a_deleted_image_drops_out_and_a_link_with_none_left_is_a_404(anonymous, new_link, images):
    token = new_link.plaintext
    images[0].delete()
    assert anonymous.get(file_url(token, 1)).status_code == 404
    assert anonymous.get(file_url(token, 2)).status_code == 200
    html = anonymous.get(page_url(token)).content.decode()
    assert str(images[0].pk) not in html and file_url(token, 2) in html
    images[1].delete()
    assert anonymous.get(page_url(token)).status_code == 404


@pytest.mark.parametrize("position", [0, 3, 32767])
def test_a_position_outside_the_link_is_a_404(anonymous, new_link, position):
    assert anonymous.get(file_url(new_link.plaintext, position)).status_code == 404
    assert anonymous.get(thumbnail_url(new_link.plaintext, position)).status_code == 404


def test_malformed_tokens_are_a_404_without_a_query(anonymous, db, django_assert_num_queries):
    for token in ("nope", "shr_short", "atl_" + "a" * 43, "shr_" + "a" * 42 + "!", "shr_" + "a" * 44):
        with django_assert_num_queries(0):
            assert anonymous.get(page_url(token)).status_code == 404, token
            assert anonymous.get(thumbnail_url(token)).status_code == 404, token


def test_an_unknown_token_is_a_404(anonymous, new_link):
    unknown = "shr_" + "A" * 43
    for url in (page_url(unknown), file_url(unknown), thumbnail_url(unknown)):
        assert anonymous.get(url).status_code == 404


def test_a_deactivated_owners_links_stop_working(anonymous, new_link, user):
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert anonymous.get(page_url(new_link.plaintext)).status_code == 404


# --- caching ------------------------------------------------------------------------------------


def test_the_page_is_revalidated_on_every_view_and_its_files_kept_briefly(anonymous, new_link, settings):
    settings.SHARE_LINK_CACHE_SECONDS = 45
    token = new_link.plaintext
    page = anonymous.get(page_url(token))
    assert page["Cache-Control"] == "public, no-cache" and page["ETag"]
    again = anonymous.get(page_url(token), HTTP_IF_NONE_MATCH=page["ETag"])
    assert again.status_code == 304 and again["ETag"] == page["ETag"]
    for url in (file_url(token), thumbnail_url(token)):
        response = anonymous.get(url)
        assert response["Cache-Control"] == "public, max-age=45, must-revalidate", url
        assert str(new_link.link.pk) in response["ETag"]
        assert anonymous.get(url, HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304


def test_two_links_to_one_image_have_different_etags(anonymous, user, images):
    first = links.create_link(user, images[:1], expires_in_days=None).plaintext
    second = links.create_link(user, images[:1], expires_in_days=None).plaintext
    for url_of in (file_url, thumbnail_url, page_url):
        one, other = anonymous.get(url_of(first)), anonymous.get(url_of(second))
        assert one["ETag"] != other["ETag"], url_of.__name__
        assert anonymous.get(url_of(second), HTTP_IF_NONE_MATCH=one["ETag"]).status_code == 200


def test_the_page_etag_changes_when_an_image_drops_out(anonymous, new_link, images):
    before = anonymous.get(page_url(new_link.plaintext))["ETag"]
    images[1].delete()
    response = anonymous.get(page_url(new_link.plaintext), HTTP_IF_NONE_MATCH=before)
    assert response.status_code == 200 and response["ETag"] != before


# --- limits -------------------------------------------------------------------------------------


def test_visits_are_limited_per_address(anonymous, new_link, settings, ratelimit_clock):
    settings.SHARE_LINK_RATE = "3/m"
    ratelimit_clock.stop_before_window_end("127.0.0.1", 60, 20)
    token = new_link.plaintext
    assert anonymous.get(page_url(token)).status_code == 200
    assert anonymous.get(file_url(token)).status_code == 200
    assert anonymous.get(page_url("shr_" + "B" * 43)).status_code == 404  # guesses count too
    for _ in range(5):
        assert anonymous.get(thumbnail_url(token)).status_code == 200  # an album's page shows many
    refused = anonymous.get(page_url(token))
    assert refused.status_code == 429 and refused["Retry-After"] == "20"
    assert refused["Content-Type"].startswith("text/plain") and "20 seconds" in refused.content.decode()
    assert anonymous.get(file_url(token)).status_code == 429
    assert anonymous.get(page_url(token), REMOTE_ADDR="10.0.0.9").status_code == 200  # another address
    new_link.link.refresh_from_db()
    assert new_link.link.view_count == 2  # refused views are not counted


# --- the switch and the owner's pages -----------------------------------------------------------


@pytest.mark.parametrize("level", ["team", "off"])
def test_without_public_sharing_every_route_is_a_404(settings, level, auth_client, anonymous, new_link, images):
    settings.SHARING = level
    token = new_link.plaintext
    link_id = new_link.link.pk
    for client in (auth_client, anonymous):
        for url in (page_url(token), file_url(token), thumbnail_url(token)):
            assert client.get(url).status_code == 404, url
    assert auth_client.get(reverse("sharing:links")).status_code == 404
    assert auth_client.get(reverse("sharing:link_create"), {"image": [str(images[0].pk)]}).status_code == 404
    assert auth_client.post(reverse("sharing:link_create"), {"image": [str(images[0].pk)]}).status_code == 404
    assert auth_client.post(reverse("sharing:link_revoke", args=[link_id])).status_code == 404
    assert ShareLink.objects.count() == 1 and ShareLink.objects.get().revoked_at is None
    assert reverse("sharing:links") not in auth_client.get(reverse("account")).content.decode()


def test_the_account_page_links_to_share_links(auth_client):
    assert reverse("sharing:links") in auth_client.get(reverse("account")).content.decode()


def test_the_list_shows_working_and_recently_stopped_links_only(auth_client, user, images, monkeypatch):
    working = links.create_link(user, images, title="working", expires_in_days=None).link
    revoked = links.create_link(user, images, title="revoked lately", expires_in_days=None).link
    links.revoke(revoked)
    old = links.create_link(user, images, title="revoked long ago", expires_in_days=None).link
    ShareLink.objects.filter(pk=old.pk).update(revoked_at=timezone.now() - timedelta(days=31))
    stranger = UserFactory()
    links.create_link(stranger, [ImageFactory(task__owner=stranger)], title="not mine", expires_in_days=None)
    html = auth_client.get(reverse("sharing:links")).content.decode()
    assert "working" in html and "revoked lately" in html
    assert "revoked long ago" not in html and "not mine" not in html
    assert html.count("Revoke this link") == 1 and working.prefix in html
