"""What images cost and how much each person used: costs recorded per task, the Usage page,
and the admin's usage report with its CSV (staff only)."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from generator.models import Task
from generator.scheduler.inline import run_task
from usage import prices
from usage.models import ModelPrice, Quota

from .conftest import client_for
from .factories import TaskFactory, UserFactory

USAGE = "/usage/"
REPORT = "/admin/usage/usagereport/"


@pytest.fixture(autouse=True)
def fresh_prices():
    """Price overrides are cached across requests; a test's rows are rolled back, not deleted."""
    prices.forget_overrides()
    yield
    prices.forget_overrides()


# --- costs ----------------------------------------------------------------------------------


def test_a_completed_task_records_what_its_pictures_cost(user):
    ModelPrice.objects.create(provider="offline", model="sketch-v1", price_per_image=Decimal("0.25"), currency="EUR")
    task = TaskFactory(owner=user, num_images=2)
    run_task(str(task.pk))
    task.refresh_from_db()
    assert task.status == Task.Status.COMPLETED
    assert (task.cost, task.cost_currency) == (Decimal("0.5000"), "EUR")


def test_the_list_price_applies_until_staff_override_it(user):
    assert prices.price_for("dashscope", "wan2.2-t2i-flash").amount == Decimal("0.14")
    assert prices.price_for("dashscope", "wan2.2-t2i-flash").currency == "CNY"
    ModelPrice.objects.create(
        provider="dashscope", model="wan2.2-t2i-flash", price_per_image=Decimal("0.10"), currency="CNY"
    )
    assert prices.price_for("dashscope", "wan2.2-t2i-flash").amount == Decimal("0.10")  # the save cleared the cache


def test_a_model_without_a_price_records_no_cost(user, scripted):
    task = TaskFactory(owner=user, provider="scripted", model="fixed", num_images=1, width=256, height=192)
    run_task(str(task.pk))
    task.refresh_from_db()
    assert task.status == Task.Status.COMPLETED
    assert (task.cost, task.cost_currency) == (None, "")


def test_the_offline_sketch_costs_nothing(completed_task):
    assert (completed_task.cost, completed_task.cost_currency) == (Decimal("0"), "USD")


def test_one_price_lookup_serves_a_whole_task_not_one_per_picture(user):
    prices.overrides()  # warm the cache as any earlier task would
    task = TaskFactory(owner=user, num_images=4)
    with CaptureQueriesContext(connection) as queries:
        assert prices.cost_of(task, 4) == (Decimal("0"), "USD")
    assert len(queries) == 0


# --- the Usage page -------------------------------------------------------------------------


def _figures(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}".*?</div>', html, re.S)
    assert match, element_id
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(0)))


def test_the_usage_page_shows_today_this_month_the_quotas_and_the_chart(auth_client, user, settings):
    settings.QUOTA_IMAGES_PER_DAY = 10
    settings.QUOTA_IMAGES_PER_MONTH = None
    settings.QUOTA_SPEND_PER_MONTH = Decimal("2")
    settings.USAGE_CURRENCY = "USD"
    settings.USAGE_EXCHANGE_RATES = {}
    TaskFactory(owner=user, num_images=3, status=Task.Status.COMPLETED, cost=Decimal("0.75"), cost_currency="USD")
    TaskFactory(
        owner=user, num_images=1, status=Task.Status.COMPLETED, model="other", cost=Decimal("0.40"), cost_currency="CNY"
    )
    TaskFactory(owner=user, num_images=2, status=Task.Status.FAILED)  # not counted
    response = auth_client.get(USAGE)
    assert response.status_code == 200
    html = response.content.decode()
    assert "4 images" in _figures(html, "usage-today")
    month = _figures(html, "usage-month")
    assert "4 images" in month and "Spent: 0.75 USD" in month and "0.40 CNY (no exchange rate set)" in month
    day = _figures(html, "quota-images_per_day")
    assert "4 of 10 used, 6 left" in day and "Resets on" in day
    assert "no limit" in _figures(html, "quota-images_per_month")
    assert "0.75 of 2.00 USD spent, 1.25 USD left" in _figures(html, "quota-spend_per_month")
    # The chart: today's bar is two stacked rects (two models), with a legend and a table.
    assert html.count('<rect class="bar"') == 2
    assert "sketch-v1 (offline): 3" in html and "other (offline): 1" in html
    assert 'role="img"' in html and "<table" in html


def test_the_usage_page_never_shows_anyone_elses_usage(auth_client, user, other_user):
    TaskFactory(owner=other_user, num_images=4, model="someone-elses-model", status=Task.Status.COMPLETED)
    TaskFactory(owner=user, num_images=1, status=Task.Status.COMPLETED)
    html = auth_client.get(USAGE).content.decode()
    assert "someone-elses-model" not in html
    assert "1 image" in _figures(html, "usage-today")
    assert html.count('<rect class="bar"') == 1


def test_the_usage_page_takes_the_same_number_of_queries_however_much_was_made(auth_client, user):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert auth_client.get(USAGE).status_code == 200
        return len(captured)

    TaskFactory(owner=user)
    queries()  # the price list's cache warmed, as the worker and every page keep it
    few = queries()
    for index in range(12):
        TaskFactory(owner=user, model=f"model-{index % 6}", status=Task.Status.COMPLETED, num_images=2)
    group = Group.objects.create(name="team")
    user.groups.add(group)
    assert queries() == few


def test_the_usage_page_needs_signing_in(client):
    response = client.get(USAGE)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


# --- the admin ------------------------------------------------------------------------------


def _report_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_staff_see_usage_per_person_provider_and_model_and_download_it(admin_client, settings):
    settings.USAGE_CURRENCY = "USD"
    settings.USAGE_EXCHANGE_RATES = {"CNY": Decimal("0.5")}
    alice, bob = UserFactory(username="alice"), UserFactory(username="=HYPERLINK(1)")
    TaskFactory(owner=alice, num_images=2, status=Task.Status.COMPLETED, cost=Decimal("1"), cost_currency="USD")
    TaskFactory(
        owner=alice,
        num_images=1,
        provider="dashscope",
        model="wan2.6-t2i",
        status=Task.Status.COMPLETED,
        cost=Decimal("2"),
        cost_currency="CNY",
    )
    TaskFactory(owner=bob, num_images=4, status=Task.Status.CANCELED)  # not counted
    TaskFactory(owner=bob, num_images=1)

    page = admin_client.get(REPORT)
    assert page.status_code == 200
    html = page.content.decode()
    assert "alice" in html and 'id="usage-report"' in html

    by_person = admin_client.get(REPORT, {"by": "person", "period": "this_month", "format": "csv"})
    assert by_person.status_code == 200 and by_person.streaming
    assert by_person["Content-Type"].startswith("text/csv")
    rows = _report_rows(b"".join(by_person.streaming_content).decode())
    assert rows[0] == ["person", "tasks", "images", "cost_usd", "cost_other_currencies"]
    assert ["alice", "2", "3", "2.0000", ""] in rows
    # A cell a spreadsheet would run as a formula is made text.
    assert ["'=HYPERLINK(1)", "1", "1", "0.0000", ""] in rows

    by_model = admin_client.get(REPORT, {"by": "model", "period": "last_30_days", "format": "csv"})
    rows = _report_rows(b"".join(by_model.streaming_content).decode())
    assert ["dashscope", "wan2.6-t2i", "1", "1", "1.0000", ""] in rows
    assert ["offline", "sketch-v1", "2", "3", "1.0000", ""] in rows

    by_provider = admin_client.get(REPORT, {"by": "provider", "period": "last_month", "format": "csv"})
    assert _report_rows(b"".join(by_provider.streaming_content).decode())[1:] == []  # nothing last month


def test_bad_report_parameters_fall_back_to_the_defaults(admin_client):
    response = admin_client.get(REPORT, {"by": "nonsense", "period": "forever"})
    assert response.status_code == 200


def test_the_usage_report_is_for_staff_with_permission_only(client, user, settings):
    TaskFactory(owner=user, num_images=1)
    assert client_for(user).get(REPORT).status_code == 302  # not staff: the admin's sign-in
    staff = UserFactory(is_staff=True)
    assert client_for(staff).get(REPORT).status_code == 403
    assert client_for(staff).get(REPORT, {"format": "csv"}).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_usagereport"))
    assert client_for(staff).get(REPORT).status_code == 200


def test_the_price_list_shows_every_known_model_with_its_effective_price(admin_client, user):
    ModelPrice.objects.create(provider="openai", model="gpt-image-2", price_per_image=Decimal("0.05"), currency="USD")
    TaskFactory(owner=user, provider="ark", model="ep-unknown-endpoint")
    html = admin_client.get(reverse("admin:usage_modelprice_changelist")).content.decode()
    table = html[html.index('id="known-prices-table"') :]
    assert "gpt-image-2" in table and "0.05 USD" in table and "set by staff" in table
    assert "wan2.2-t2i-flash" in table and "0.14 CNY" in table
    assert "ep-unknown-endpoint" in table and "no price" in table


def test_quotas_are_edited_inline_on_the_person_and_the_group(admin_client, user):
    group = Group.objects.create(name="team")
    for url in (reverse("admin:auth_user_change", args=[user.pk]), reverse("admin:auth_group_change", args=[group.pk])):
        html = admin_client.get(url).content.decode()
        assert "quota-" in html and "images_per_day" in html


def test_a_quota_for_nobody_or_for_both_a_person_and_a_group_is_refused_with_a_message(admin_client, user):
    group = Group.objects.create(name="team")
    add = reverse("admin:usage_quota_add")
    for owner in ({}, {"user": user.pk, "group": group.pk}):
        response = admin_client.post(add, {**owner, "images_per_day": "5"})
        assert response.status_code == 200
        assert "choose exactly one of them" in response.content.decode()
    assert not Quota.objects.exists()
    response = admin_client.post(add, {"user": user.pk, "images_per_day": "-1", "spend_per_month": "-2"})
    assert response.status_code == 200 and not Quota.objects.exists()
    assert admin_client.post(add, {"group": group.pk, "images_per_day": "5"}).status_code == 302
    assert Quota.objects.get().group == group


def test_a_price_needs_a_currency_code_and_no_negative_amount(admin_client):
    add = reverse("admin:usage_modelprice_add")
    response = admin_client.post(
        add, {"provider": "openai", "model": "gpt-image-2", "price_per_image": "-1", "currency": "usd"}
    )
    assert response.status_code == 200
    assert "Three capital letters" in response.content.decode()
    assert not ModelPrice.objects.exists()
