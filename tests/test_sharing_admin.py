"""Staff's side of sharing in the admin: hide a published image with a reason (and unhide it),
revoke share links, never see a link's digest, never edit counts; others cannot get in."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from generator.models import Image
from sharing import links
from sharing.models import Publication, ShareLink

from .factories import ImageFactory, UserFactory

PUBLICATIONS = "admin:sharing_publication_changelist"
SHARE_LINKS = "admin:sharing_sharelink_changelist"


@pytest.fixture
def staff(db):
    return UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def publish(image: Image, **fields) -> Publication:
    return Publication.objects.create(
        image=image,
        owner=image.owner,
        title=fields.pop("title", "Harbour at dawn"),
        provider=image.task.provider,
        model=image.task.model,
        prompt=image.task.prompt,
        **fields,
    )


@pytest.fixture
def publication(user) -> Publication:
    return publish(ImageFactory(task__owner=user))


def hide(client: Client, publications, **extra):
    data = {"action": "hide_publications", "_selected_action": [str(p.pk) for p in publications], **extra}
    return client.post(reverse(PUBLICATIONS), data)


def test_the_pages_render_for_staff(staff_client, publication, user):
    link = links.create_link(user, [publication.image], expires_in_days=None).link
    for url in (
        reverse(PUBLICATIONS),
        reverse(PUBLICATIONS) + "?hidden=yes",
        reverse("admin:sharing_publication_change", args=[publication.pk]),
        reverse(SHARE_LINKS),
        reverse(SHARE_LINKS) + "?state=all",
        reverse("admin:sharing_sharelink_change", args=[link.pk]),
    ):
        response = staff_client.get(url)
        assert response.status_code == 200, url
    for url in (reverse(PUBLICATIONS), reverse("admin:sharing_publication_change", args=[publication.pk])):
        assert publication.image.thumbnail_url in staff_client.get(url).content.decode(), url


def test_hiding_asks_for_a_reason_first(staff_client, publication):
    response = hide(staff_client, [publication])
    assert response.status_code == 200 and "Reason" in response.content.decode()
    response = hide(staff_client, [publication], apply="1", reason="   ")
    assert response.status_code == 200 and "Please give a reason." in response.content.decode()
    publication.refresh_from_db()
    assert not publication.is_hidden


def test_hiding_with_a_reason_takes_it_off_explore_but_not_the_gallery(staff_client, staff, publication, user):
    other = publish(ImageFactory(task__owner=user), title="still shown")
    response = hide(staff_client, [publication], apply="1", reason="Not suitable for the team")
    assert response.status_code == 302
    publication.refresh_from_db()
    assert publication.is_hidden and publication.hidden_by == staff
    assert publication.hidden_reason == "Not suitable for the team"
    assert list(Publication.objects.visible()) == [other]
    author = Client()
    author.force_login(user)
    assert str(publication.image.pk) in author.get(reverse("generator:gallery")).content.decode()
    changelist = staff_client.get(reverse(PUBLICATIONS), {"hidden": "yes"})
    assert [row.pk for row in changelist.context["cl"].result_list] == [publication.pk]


def test_unhiding_puts_it_back(staff_client, staff, publication):
    publication.hide(staff, "by mistake")
    data = {"action": "unhide_publications", "_selected_action": [str(publication.pk)]}
    assert staff_client.post(reverse(PUBLICATIONS), data).status_code == 302
    publication.refresh_from_db()
    assert not publication.is_hidden and publication.hidden_reason == "" and publication.hidden_by is None
    assert list(Publication.objects.visible()) == [publication]


def test_staff_cannot_edit_counts_or_add_rows(staff_client, publication, user):
    Publication.objects.filter(pk=publication.pk).update(like_count=4)
    url = reverse("admin:sharing_publication_change", args=[publication.pk])
    staff_client.post(url, {"like_count": 999, "title": "renamed by staff", "hidden_reason": "sneaky"})
    publication.refresh_from_db()
    assert publication.like_count == 4 and publication.title == "Harbour at dawn" and not publication.hidden_reason
    assert staff_client.get(reverse("admin:sharing_publication_add")).status_code == 403
    assert staff_client.get(reverse("admin:sharing_sharelink_add")).status_code == 403


def test_share_links_list_working_ones_by_default(staff_client, user, publication):
    image = publication.image
    working = links.create_link(user, [image], title="working", expires_in_days=None).link
    revoked = links.create_link(user, [image], title="revoked", expires_in_days=None).link
    links.revoke(revoked)
    expired = links.create_link(user, [image], title="expired", expires_in_days=1).link
    ShareLink.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    def listed(**query) -> set:
        return {row.pk for row in staff_client.get(reverse(SHARE_LINKS), query).context["cl"].result_list}

    assert listed() == {working.pk}
    assert listed(state="revoked") == {revoked.pk}
    assert listed(state="expired") == {expired.pk}
    assert listed(state="all") == {working.pk, revoked.pk, expired.pk}


def test_revoking_in_the_admin_stops_the_link(staff_client, user, publication, settings, ratelimit_clock):
    settings.SHARING = "public"
    new = links.create_link(user, [publication.image], expires_in_days=None)
    anonymous = Client()
    assert anonymous.get(reverse("sharing:shared", args=[new.plaintext])).status_code == 200
    data = {"action": "revoke_links", "_selected_action": [str(new.link.pk)]}
    assert staff_client.post(reverse(SHARE_LINKS), data).status_code == 302
    new.link.refresh_from_db()
    assert new.link.revoked_at is not None
    assert anonymous.get(reverse("sharing:shared", args=[new.plaintext])).status_code == 404


def test_the_digest_is_never_shown(staff_client, user, publication):
    link = links.create_link(user, [publication.image], expires_in_days=None).link
    for url in (
        reverse(SHARE_LINKS),
        reverse("admin:sharing_sharelink_change", args=[link.pk]),
        reverse(SHARE_LINKS) + f"?q={link.prefix}",
    ):
        html = staff_client.get(url).content.decode()
        assert link.digest not in html and link.prefix in html, url


def test_people_who_are_not_staff_cannot_get_in(client, auth_client, publication, db):
    urls = [reverse(PUBLICATIONS), reverse(SHARE_LINKS)]
    for url in urls:
        assert client.get(url).status_code == 302
        response = auth_client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))
    staff_without_permission = Client()
    staff_without_permission.force_login(UserFactory(is_staff=True))
    for url in urls:
        assert staff_without_permission.get(url).status_code == 403
    assert hide(staff_without_permission, [publication], apply="1", reason="no").status_code == 403
    publication.refresh_from_db()
    assert not publication.is_hidden


def test_staff_who_may_only_view_cannot_hide(publication):
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_publication"))
    client = Client()
    client.force_login(viewer)
    assert client.get(reverse(PUBLICATIONS)).status_code == 200
    hide(client, [publication], apply="1", reason="no")
    publication.refresh_from_db()
    assert not publication.is_hidden
