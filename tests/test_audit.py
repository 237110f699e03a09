"""The audit log: each security-relevant event is written exactly once, by its real path (the
pages, the API, the admin, the commands), with who, from which address and on what; never a
secret. Staff read it in the admin and nobody can change it there; retention deletes old
entries; ADMIN_ALLOWED_NETWORKS hides the admin from other networks."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiToken
from accounts.tokens import create_token
from audit.log import record
from audit.models import AuditEntry, Event
from config.startup import refuse_to_start_on_errors
from generator import jobs
from generator.models import Image, Task
from sharing.models import Publication, ShareLink

from .factories import PASSWORD, ImageFactory, PublicationFactory, TaskFactory, UserFactory

pytestmark = pytest.mark.usefixtures("ratelimit_clock")

HOME = "203.0.113.9"  # every request in these tests comes from here, unless it says otherwise
JSON = "application/json"


@pytest.fixture(autouse=True)
def public_sharing(settings):
    settings.SHARING = "public"


@pytest.fixture
def staff(db):
    return UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def staff_client(staff) -> Client:
    client = Client(REMOTE_ADDR=HOME)
    client.force_login(staff)
    return client


@pytest.fixture
def person_client(user) -> Client:
    client = Client(REMOTE_ADDR=HOME)
    client.force_login(user)
    return client


def only(event: Event) -> AuditEntry:
    """The one entry of `event` (force_login's sign-ins aside, tests write nothing else)."""
    found = list(AuditEntry.objects.filter(event=event))
    assert len(found) == 1, f"{len(found)} {event} entries: {found}"
    return found[0]


def as_text(entry: AuditEntry) -> str:
    return json.dumps(
        {field.attname: str(getattr(entry, field.attname)) for field in AuditEntry._meta.fields}
        | {"detail": entry.detail}
    )


def assert_entry(entry: AuditEntry, *, actor, target=None, address: str | None = HOME) -> None:
    assert entry.actor == actor
    assert entry.actor_name == (actor.get_username() if actor else "")
    assert entry.address == address
    if target is not None:
        assert (entry.target_type, entry.target_id) == (target._meta.label_lower, str(target.pk))


def bearer(user) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {create_token(user, 'script').plaintext}"}


def admin_action(client: Client, url_name: str, action: str, objects, **extra):
    data = {"action": action, "_selected_action": [str(obj.pk) for obj in objects], **extra}
    return client.post(reverse(url_name), data, follow=True)


# --- signing in and out ----------------------------------------------------------------------


def test_a_sign_in_is_recorded_once_with_the_person_and_address(user):
    client = Client(REMOTE_ADDR=HOME)
    response = client.post(reverse("login"), {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    assert_entry(only(Event.SIGN_IN), actor=user)


def test_a_sign_in_through_the_admin_is_recorded_once(staff):
    client = Client(REMOTE_ADDR=HOME)
    response = client.post(reverse("admin:login"), {"username": staff.username, "password": PASSWORD})
    assert response.status_code == 302
    assert_entry(only(Event.SIGN_IN), actor=staff)


def test_a_wrong_password_is_recorded_against_the_account_without_the_password(user):
    client = Client(REMOTE_ADDR=HOME)
    response = client.post(reverse("login"), {"username": user.username, "password": "guessed-wrong-77"})
    assert response.status_code == 200
    entry = only(Event.SIGN_IN_FAILED)
    assert_entry(entry, actor=user)
    assert "guessed-wrong-77" not in as_text(entry)
    assert not AuditEntry.objects.filter(event=Event.SIGN_IN).exists()


def test_a_failed_sign_in_with_an_unknown_name_stores_nothing_typed(db):
    client = Client(REMOTE_ADDR=HOME)
    client.post(reverse("login"), {"username": "my-password-typed-here", "password": "hunter2-secret"})
    entry = only(Event.SIGN_IN_FAILED)
    assert_entry(entry, actor=None)
    assert "my-password-typed-here" not in as_text(entry)
    assert "hunter2-secret" not in as_text(entry)


def test_a_sign_out_is_recorded_once(person_client, user):
    AuditEntry.objects.all().delete()  # force_login's sign-in
    person_client.post(reverse("logout"))
    assert_entry(only(Event.SIGN_OUT), actor=user)
    person_client.post(reverse("logout"))  # signed out already: nothing more
    assert AuditEntry.objects.filter(event=Event.SIGN_OUT).count() == 1


def test_the_address_is_the_trusted_proxys_client_never_a_header_the_client_wrote(user, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    through_proxy = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.1, 198.51.100.7")
    through_proxy.post(reverse("login"), {"username": user.username, "password": PASSWORD})
    direct = Client(REMOTE_ADDR=HOME, HTTP_X_FORWARDED_FOR="198.51.100.99")
    direct.post(reverse("login"), {"username": user.username, "password": PASSWORD})
    addresses = list(AuditEntry.objects.filter(event=Event.SIGN_IN).order_by("pk").values_list("address", flat=True))
    assert addresses == ["198.51.100.7", HOME]


# --- password and API tokens -----------------------------------------------------------------


def test_a_password_change_is_recorded_once_without_the_password(person_client, user):
    new = "another-long-phrase-42"
    response = person_client.post(
        reverse("password_change"), {"old_password": PASSWORD, "new_password1": new, "new_password2": new}
    )
    assert response.status_code == 302
    entry = only(Event.PASSWORD_CHANGED)
    assert_entry(entry, actor=user, target=user)
    assert new not in as_text(entry) and PASSWORD not in as_text(entry)


def test_a_refused_password_change_records_nothing(person_client):
    response = person_client.post(
        reverse("password_change"), {"old_password": "wrong", "new_password1": "x1", "new_password2": "x2"}
    )
    assert response.status_code == 200
    assert not AuditEntry.objects.filter(event=Event.PASSWORD_CHANGED).exists()


def test_staff_setting_a_password_in_the_admin_is_recorded_once(staff_client, staff, user):
    new = "staff-chosen-phrase-42"
    url = reverse("admin:auth_user_password_change", args=[user.pk])
    response = staff_client.post(url, {"password1": new, "password2": new, "usable_password": "true"})
    assert response.status_code == 302
    entry = only(Event.PASSWORD_CHANGED)
    assert_entry(entry, actor=staff, target=user)
    assert new not in as_text(entry)


def test_a_token_made_on_the_account_page_is_recorded_once_without_its_secret(person_client, user):
    response = person_client.post(reverse("api_token_create"), {"name": "laptop"}, follow=True)
    plaintext = response.context["new_token"].plaintext
    token = ApiToken.objects.get(owner=user)
    entry = only(Event.TOKEN_CREATED)
    assert_entry(entry, actor=user, target=token)
    assert plaintext not in as_text(entry) and token.digest not in as_text(entry)


def test_a_token_revoked_on_the_account_page_is_recorded_once(person_client, user):
    token = create_token(user, "old").token
    person_client.post(reverse("api_token_revoke", args=[token.pk]))
    assert_entry(only(Event.TOKEN_REVOKED), actor=user, target=token)


def test_revoke_all_is_one_entry_with_the_count_and_none_when_there_was_nothing(person_client, user):
    create_token(user, "one")
    create_token(user, "two")
    person_client.post(reverse("api_token_revoke_all"))
    entry = only(Event.TOKEN_REVOKED)
    assert_entry(entry, actor=user, target=user)
    assert entry.detail["count"] == 2
    person_client.post(reverse("api_token_revoke_all"))
    assert AuditEntry.objects.filter(event=Event.TOKEN_REVOKED).count() == 1


def test_staff_revoking_tokens_in_the_admin_records_each_once(staff_client, staff, user):
    first, second = create_token(user, "a").token, create_token(user, "b").token
    admin_action(staff_client, "admin:accounts_apitoken_changelist", "revoke", [first, second])
    entries = AuditEntry.objects.filter(event=Event.TOKEN_REVOKED)
    assert sorted(entries.values_list("target_id", flat=True)) == sorted([str(first.pk), str(second.pk)])
    assert {entry.actor for entry in entries} == {staff}


def test_deactivating_someone_in_the_admin_records_their_tokens_revoked_once(staff_client, staff, user):
    create_token(user, "a")
    url = reverse("admin:auth_user_change", args=[user.pk])
    page = staff_client.get(url)
    inline = page.context["inline_admin_formsets"][0].formset.prefix
    data = {
        "username": user.username,
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        f"{inline}-TOTAL_FORMS": "0",
        f"{inline}-INITIAL_FORMS": "0",
        # is_active left out: the box unticked
    }
    response = staff_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    user.refresh_from_db()
    assert not user.is_active
    entry = only(Event.TOKEN_REVOKED)
    assert_entry(entry, actor=staff, target=user)
    assert entry.detail == {"count": 1, "reason": "deactivated"}


def test_a_metrics_token_made_by_the_command_is_recorded_without_an_actor(staff):
    call_command("create_metrics_token", staff.username, "prometheus", stdout=open("/dev/null", "w"))
    entry = only(Event.TOKEN_CREATED)
    assert_entry(entry, actor=None, target=ApiToken.objects.get(owner=staff), address=None)


# --- sign-up approval --------------------------------------------------------------------------


def test_approving_sign_ups_records_each_person_once(staff_client, staff):
    waiting = [UserFactory(is_active=False), UserFactory(is_active=False)]
    active = UserFactory()
    admin_action(staff_client, "admin:auth_user_changelist", "approve_accounts", [*waiting, active])
    entries = AuditEntry.objects.filter(event=Event.SIGN_UP_APPROVED)
    assert sorted(entries.values_list("target_id", flat=True)) == sorted(str(person.pk) for person in waiting)
    assert_entry(entries[0], actor=staff)
    admin_action(staff_client, "admin:auth_user_changelist", "approve_accounts", waiting)  # approved already
    assert entries.count() == 2


# --- staff actions on tasks --------------------------------------------------------------------


def test_staff_retry_cancel_and_delete_are_recorded_once_each(staff_client, staff, user):
    failed = TaskFactory(owner=user, status=Task.Status.FAILED, prompt="a private fox")
    pending = TaskFactory(owner=user, status=Task.Status.PENDING)
    finished = TaskFactory(owner=user, status=Task.Status.COMPLETED)
    url = "admin:generator_task_changelist"
    admin_action(staff_client, url, "retry_tasks", [failed, finished])
    admin_action(staff_client, url, "cancel_tasks", [pending, finished])
    retried, canceled = only(Event.TASK_RETRIED), only(Event.TASK_CANCELED)
    assert_entry(retried, actor=staff, target=failed)
    assert retried.detail["new_task"] == str(Task.objects.exclude(pk__in=[failed.pk, pending.pk, finished.pk]).get().pk)
    assert_entry(canceled, actor=staff, target=pending)
    assert "private fox" not in as_text(retried)

    admin_action(staff_client, url, "delete_selected", [failed, finished], post="yes")
    staff_client.post(reverse("admin:generator_task_delete", args=[pending.pk]), {"post": "yes"})
    deleted = AuditEntry.objects.filter(event=Event.TASK_DELETED)
    assert sorted(deleted.values_list("target_id", flat=True)) == sorted(str(t.pk) for t in (failed, finished, pending))
    assert {entry.actor for entry in deleted} == {staff}


def test_staff_deleting_images_in_the_admin_is_recorded_once_each(staff_client, staff, completed_task):
    first, second = completed_task.ordered_images[:2]
    admin_action(staff_client, "admin:generator_image_changelist", "delete_selected", [first], post="yes")
    staff_client.post(reverse("admin:generator_image_delete", args=[second.pk]), {"post": "yes"})
    deleted = AuditEntry.objects.filter(event=Event.IMAGE_DELETED)
    assert sorted(deleted.values_list("target_id", flat=True)) == sorted([str(first.pk), str(second.pk)])
    assert {entry.actor for entry in deleted} == {staff}
    assert not Image.objects.filter(pk__in=[first.pk, second.pk]).exists()


def test_asking_to_delete_without_confirming_records_nothing(staff_client):
    task = TaskFactory(status=Task.Status.COMPLETED)
    admin_action(staff_client, "admin:generator_task_changelist", "delete_selected", [task])
    assert Task.objects.filter(pk=task.pk).exists()
    assert not AuditEntry.objects.filter(event=Event.TASK_DELETED).exists()


# --- publishing, hiding, share links ---------------------------------------------------------


def test_publish_and_unpublish_through_the_pages_are_recorded_once(person_client, user):
    image = ImageFactory(task__owner=user)
    person_client.post(reverse("sharing:publish", args=[image.pk]), {"title": "Dawn", "show_prompt": "on"})
    publication = Publication.objects.get(image=image)
    entry = only(Event.PUBLISHED)
    assert_entry(entry, actor=user, target=publication)
    assert entry.detail["updated"] is False
    person_client.post(reverse("sharing:unpublish", args=[image.pk]))
    assert_entry(only(Event.UNPUBLISHED), actor=user, target=image)
    person_client.post(reverse("sharing:unpublish", args=[image.pk]))  # nothing left to take back
    assert AuditEntry.objects.filter(event=Event.UNPUBLISHED).count() == 1


def test_publishing_a_task_and_the_gallerys_bulk_publish_record_each_image_once(person_client, user):
    task = TaskFactory(owner=user, status=Task.Status.COMPLETED)
    first, second = ImageFactory(task=task), ImageFactory(task=task)
    person_client.post(reverse("sharing:publish_task", args=[task.pk]), {"show_prompt": "on"})
    assert sorted(AuditEntry.objects.values_list("detail__image", flat=True).exclude(detail__image=None)) == sorted(
        [str(first.pk), str(second.pk)]
    )
    third = ImageFactory(task__owner=user)
    AuditEntry.objects.all().delete()
    person_client.post(
        reverse("generator:gallery_bulk"), {"action": "publish", "image": [str(first.pk), str(third.pk)]}
    )
    assert only(Event.PUBLISHED).detail["image"] == str(third.pk)  # the first was published already


def test_publish_and_unpublish_through_the_api_are_recorded_once(user):
    image = ImageFactory(task__owner=user)
    client = Client(REMOTE_ADDR=HOME, **bearer(user))
    url = reverse("api:image_publish", args=[image.pk])
    assert client.post(url, {"title": "Dawn"}, content_type=JSON).status_code == 201
    assert_entry(only(Event.PUBLISHED), actor=user, target=Publication.objects.get(image=image))
    assert client.post(url, {"show_prompt": False}, content_type=JSON).status_code == 200
    assert AuditEntry.objects.filter(event=Event.PUBLISHED, detail__updated=True).count() == 1
    assert client.delete(url).status_code == 204
    assert_entry(only(Event.UNPUBLISHED), actor=user, target=image)


def test_staff_hiding_and_unhiding_are_recorded_once(staff_client, staff):
    publication = PublicationFactory()
    url = "admin:sharing_publication_changelist"
    admin_action(staff_client, url, "hide_publications", [publication], apply="1", reason="spam")
    entry = only(Event.IMAGE_HIDDEN)
    assert_entry(entry, actor=staff, target=publication)
    assert entry.detail == {"reason": "spam"}
    admin_action(staff_client, url, "unhide_publications", [publication])
    assert_entry(only(Event.IMAGE_UNHIDDEN), actor=staff, target=publication)


def test_share_links_made_and_revoked_on_the_pages_are_recorded_without_their_secret(person_client, user):
    image = ImageFactory(task__owner=user)
    response = person_client.post(
        reverse("sharing:link_create"), {"image": [str(image.pk)], "title": "Hi"}, follow=True
    )
    url = response.context["new_link_url"]
    link = ShareLink.objects.get(owner=user)
    entry = only(Event.SHARE_LINK_CREATED)
    assert_entry(entry, actor=user, target=link)
    secret = url.rstrip("/").rsplit("/", 1)[-1]
    assert secret.startswith("shr_") and secret not in as_text(entry) and link.digest not in as_text(entry)
    person_client.post(reverse("sharing:link_revoke", args=[link.pk]))
    person_client.post(reverse("sharing:link_revoke", args=[link.pk]))  # revoked already
    assert_entry(only(Event.SHARE_LINK_REVOKED), actor=user, target=link)


def test_share_links_made_and_revoked_through_the_api_are_recorded_once(user):
    image = ImageFactory(task__owner=user)
    client = Client(REMOTE_ADDR=HOME, **bearer(user))
    response = client.post(reverse("api:share_links"), {"image_ids": [str(image.pk)]}, content_type=JSON)
    assert response.status_code == 201
    link = ShareLink.objects.get(owner=user)
    entry = only(Event.SHARE_LINK_CREATED)
    assert_entry(entry, actor=user, target=link)
    assert response.json()["url"] not in as_text(entry)
    assert client.delete(reverse("api:share_link_revoke", args=[link.pk])).status_code == 204
    assert_entry(only(Event.SHARE_LINK_REVOKED), actor=user, target=link)


def test_staff_revoking_a_share_link_is_recorded_once(staff_client, staff, user):
    from sharing import links

    link = links.create_link(user, [ImageFactory(task__owner=user)], expires_in_days=None).link
    admin_action(staff_client, "admin:sharing_sharelink_changelist", "revoke_links", [link])
    admin_action(staff_client, "admin:sharing_sharelink_changelist", "revoke_links", [link], state="all")
    assert_entry(only(Event.SHARE_LINK_REVOKED), actor=staff, target=link)


def test_ordinary_requests_write_nothing(person_client, user, staff_client):
    image = ImageFactory(task__owner=user)
    before = AuditEntry.objects.count()
    for url in (
        reverse("account"),
        reverse("generator:gallery"),
        image.detail_url,
        reverse("sharing:explore"),
        reverse("sharing:links"),
    ):
        assert person_client.get(url).status_code == 200
    assert staff_client.get(reverse("admin:audit_auditentry_changelist")).status_code == 200
    assert AuditEntry.objects.count() == before


# --- the admin: browse and filter, never change -----------------------------------------------


@pytest.fixture
def entry(user):
    return record(Event.TOKEN_CREATED, actor=user, detail={"scopes": ["api"]})


def test_staff_browse_search_and_filter_the_log(staff_client, entry, user):
    url = reverse("admin:audit_auditentry_changelist")
    AuditEntry.objects.filter(event=Event.SIGN_IN).delete()  # the staff's force_login
    AuditEntry.objects.filter(pk=record(Event.SIGN_OUT).pk).update(address="198.51.100.250")
    for query, expected in (
        ({}, 2),
        ({"event": Event.TOKEN_CREATED}, 1),
        ({"q": user.username}, 1),
        ({"q": "198.51.100.250"}, 1),
        ({"q": "198.51.100.251"}, 0),
        ({"event": Event.SIGN_OUT, "q": user.username}, 0),
    ):
        response = staff_client.get(url, query)
        assert response.status_code == 200
        assert response.context["cl"].result_count == expected, query
    page = staff_client.get(url).content.decode()
    assert user.username in page


def test_the_log_is_read_only_for_a_superuser(staff_client, entry):
    changelist = staff_client.get(reverse("admin:audit_auditentry_changelist"))
    assert "delete_selected" not in changelist.content.decode()
    assert 'name="action"' not in changelist.content.decode()
    assert staff_client.get(reverse("admin:audit_auditentry_add")).status_code == 403
    change_url = reverse("admin:audit_auditentry_change", args=[entry.pk])
    page = staff_client.get(change_url)
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert staff_client.post(change_url, {"event": "sign_in", "actor_name": "someone"}).status_code == 403
    delete_url = reverse("admin:audit_auditentry_delete", args=[entry.pk])
    assert staff_client.get(delete_url).status_code == 403
    assert staff_client.post(delete_url, {"post": "yes"}).status_code == 403
    action = {"action": "delete_selected", "_selected_action": [str(entry.pk)], "post": "yes"}
    staff_client.post(reverse("admin:audit_auditentry_changelist"), action)
    entry.refresh_from_db()
    assert (entry.event, entry.actor_name) == (Event.TOKEN_CREATED, entry.actor.username)


# --- retention -------------------------------------------------------------------------------


def test_the_daily_cleanup_removes_only_entries_older_than_the_retention(db, settings):
    settings.AUDIT_RETENTION_DAYS = 30
    now = timezone.now()
    old = record(Event.SIGN_OUT)
    recent = record(Event.SIGN_OUT)
    AuditEntry.objects.filter(pk=old.pk).update(at=now - timedelta(days=31))
    AuditEntry.objects.filter(pk=recent.pk).update(at=now - timedelta(days=29))
    summary = jobs.retention_cleanup()
    assert "Deleted 1 audit entry" in summary
    assert list(AuditEntry.objects.values_list("pk", flat=True)) == [recent.pk]


def test_a_retention_of_zero_keeps_every_entry(db, settings):
    settings.AUDIT_RETENTION_DAYS = 0
    old = record(Event.SIGN_OUT)
    AuditEntry.objects.filter(pk=old.pk).update(at=timezone.now() - timedelta(days=4000))
    assert "audit" not in jobs.retention_cleanup()
    assert AuditEntry.objects.filter(pk=old.pk).exists()


# --- ADMIN_ALLOWED_NETWORKS ------------------------------------------------------------------


def test_the_admin_answers_inside_the_networks_and_is_a_404_outside(settings, staff):
    settings.ADMIN_ALLOWED_NETWORKS = ["192.0.2.0/24", "2001:db8::/32"]
    for remote, expected in (("192.0.2.10", 200), ("2001:db8::5", 200), (HOME, 404)):
        anonymous = Client(REMOTE_ADDR=remote)
        assert anonymous.get(reverse("admin:login")).status_code == expected, remote
        signed_in = Client(REMOTE_ADDR=remote)
        signed_in.force_login(staff)
        assert signed_in.get(reverse("admin:index")).status_code == expected, remote
    outside = Client(REMOTE_ADDR=HOME)
    response = outside.get("/admin")  # not the slash redirect, which would show where it is
    assert response.status_code == 404
    assert "Not found" in outside.get(reverse("admin:index")).content.decode()  # the site's 404 page
    # A sign-in attempt from outside never reaches the form.
    outside.post(reverse("admin:login"), {"username": staff.username, "password": PASSWORD})
    assert not AuditEntry.objects.filter(event__in=[Event.SIGN_IN, Event.SIGN_IN_FAILED], address=HOME).exists()
    # The rest of the site is not affected.
    assert outside.get(reverse("login")).status_code == 200


def test_the_networks_are_judged_by_the_trusted_proxys_client(settings, db):
    settings.ADMIN_ALLOWED_NETWORKS = ["192.0.2.0/24"]
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    via_proxy = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="192.0.2.10")
    assert via_proxy.get(reverse("admin:login")).status_code == 200
    forged = Client(REMOTE_ADDR=HOME, HTTP_X_FORWARDED_FOR="192.0.2.10")
    assert forged.get(reverse("admin:login")).status_code == 404


def test_without_networks_the_admin_answers_everywhere(settings, db):
    settings.ADMIN_ALLOWED_NETWORKS = []
    assert Client(REMOTE_ADDR=HOME).get(reverse("admin:login")).status_code == 200


def test_a_bad_network_stops_the_start(settings):
    settings.ADMIN_ALLOWED_NETWORKS = ["192.0.2.0/24", "not-a-network"]
    errors = [message for message in checks.run_checks() if message.id == "audit.E001"]
    assert errors and "not-a-network" in errors[0].msg
    with pytest.raises(ImproperlyConfigured, match="ADMIN_ALLOWED_NETWORKS"):
        refuse_to_start_on_errors()
    settings.ADMIN_ALLOWED_NETWORKS = ["192.0.2.0/24"]
    assert not [message for message in checks.run_checks() if message.id == "audit.E001"]
