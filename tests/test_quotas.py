"""Per-person quotas: images per day and per month, spend per month. A submission past one is
refused before anything is made (429, with which quota and when it resets), everywhere a task
can be made: the page, the API, Retry in the history and the admin."""

from __future__ import annotations

import concurrent.futures
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse
from django.utils import timezone

from generator import services
from generator.models import Task
from generator.services import TaskSettings
from usage import config, prices
from usage.models import ModelPrice, Quota, QuotaRefusal
from usage.quotas import QuotaExceeded, limits_for

from .factories import TaskFactory, UserFactory
from .test_limits import api_session

GENERATE = "/api/v1/generate"
SHANGHAI = ZoneInfo("Asia/Shanghai")
# Every rate window here stays open for the whole test (see the fixture in conftest.py).
pytestmark = pytest.mark.usefixtures("ratelimit_clock")


@pytest.fixture(autouse=True)
def fresh_prices():
    """Price overrides are cached across requests; a test's rows are rolled back, not deleted."""
    prices.forget_overrides()
    yield
    prices.forget_overrides()


class Clock:
    """The app's clock (timezone.now, and the default of Task.created_at), set by the test."""

    def __init__(self, monkeypatch, start: datetime) -> None:
        self.now = start
        monkeypatch.setattr(timezone, "now", self)
        for model, name in ((Task, "created_at"), (QuotaRefusal, "created_at")):
            field = model._meta.get_field(name)
            monkeypatch.setattr(field, "default", self)
            monkeypatch.setattr(field, "_get_default", self)  # Field.get_default's cached callable

    def __call__(self) -> datetime:
        return self.now

    def set(self, local: datetime) -> None:
        self.now = local


@pytest.fixture
def clock(monkeypatch, settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    return Clock(monkeypatch, datetime(2026, 3, 9, 12, 0, tzinfo=SHANGHAI))


def generate(client, num_images: int = 1, **extra):
    body = {"prompt": "a kite", "width": 256, "height": 256, "num_images": num_images, **extra}
    return client.post(GENERATE, body, content_type="application/json")


def ask(user, num_images: int = 1, provider: str = "offline", model: str = "sketch-v1") -> Task:
    wanted = TaskSettings(prompt="a kite", provider=provider, model=model, width=256, height=192, num_images=num_images)
    return services.create_task(user, wanted)


# --- refusing, and what a refusal leaves ------------------------------------------------------


def test_a_day_quota_refuses_the_submission_that_would_pass_it_and_changes_nothing(auth_client, user, settings):
    settings.QUOTA_IMAGES_PER_DAY = 3
    assert generate(auth_client, num_images=2).status_code == 201
    refused = generate(auth_client, num_images=2)  # 2 + 2 > 3
    assert refused.status_code == 429
    body = refused.json()
    assert body["error"] == "rate_limit_exceeded" and body["reason"] == "quota_exceeded"
    assert "3 images per day" in body["message"]
    assert Task.objects.filter(owner=user).count() == 1
    # Not counted against GENERATE_RATE either: only the task really made is.
    info = auth_client.get("/api/v1/system/info").json()["limits"]
    assert info["generate_rate"]["used"] == 1
    assert info["images_per_day"]["used"] == 2 and info["images_per_day"]["max"] == 3
    assert list(QuotaRefusal.objects.filter(owner=user).values_list("kind", flat=True)) == ["images_per_day"]
    # The one image still allowed today can be had.
    assert generate(auth_client, num_images=1).status_code == 201
    assert generate(auth_client, num_images=1).status_code == 429


def test_zero_allows_none_and_empty_allows_any(auth_client, settings):
    settings.QUOTA_IMAGES_PER_DAY = None
    settings.QUOTA_IMAGES_PER_MONTH = 0
    refused = generate(auth_client)
    assert refused.status_code == 429 and "0 images per month" in refused.json()["message"]
    settings.QUOTA_IMAGES_PER_MONTH = None
    assert generate(auth_client, num_images=4).status_code == 201


def test_the_api_answers_429_with_the_reset_time_and_retry_after(auth_client, user, settings, clock):
    settings.QUOTA_IMAGES_PER_DAY = 1
    clock.set(datetime(2026, 3, 9, 23, 59, 30, tzinfo=SHANGHAI))
    TaskFactory(owner=user, status=Task.Status.COMPLETED, created_at=clock.now)
    refused = generate(auth_client)
    assert refused.status_code == 429
    assert refused["Retry-After"] == "30"
    body = refused.json()
    assert set(body) == {"error", "reason", "message", "retry_after", "resets_at"}
    assert body["retry_after"] == 30
    # Midnight in the server's TIME_ZONE (UTC+8), said in UTC.
    assert body["resets_at"] == "2026-03-09T16:00:00+00:00"
    assert datetime.fromisoformat(body["resets_at"]) == datetime(2026, 3, 10, tzinfo=SHANGHAI)


# --- periods --------------------------------------------------------------------------------


def test_the_day_quota_resets_at_local_midnight(user, settings, clock):
    settings.QUOTA_IMAGES_PER_DAY = 2
    clock.set(datetime(2026, 3, 9, 0, 0, tzinfo=SHANGHAI))  # the first second of the day counts
    ask(user, 2)
    clock.set(datetime(2026, 3, 9, 23, 59, 59, tzinfo=SHANGHAI))
    with pytest.raises(QuotaExceeded) as refused:
        ask(user)
    assert refused.value.kind == "images_per_day"
    assert refused.value.resets_at == datetime(2026, 3, 10, tzinfo=SHANGHAI)
    assert refused.value.exceeded.retry_after == 1
    clock.set(datetime(2026, 3, 10, 0, 0, tzinfo=SHANGHAI))
    ask(user, 2)
    with pytest.raises(QuotaExceeded):
        ask(user)
    assert Task.objects.filter(owner=user).count() == 2  # one task of two images each day


def test_the_month_quota_resets_on_the_first_and_counts_every_day_of_the_month(user, settings, clock):
    settings.QUOTA_IMAGES_PER_MONTH = 5
    clock.set(datetime(2026, 1, 31, 23, 0, tzinfo=SHANGHAI))
    TaskFactory(owner=user, num_images=4, created_at=datetime(2025, 12, 31, 23, 59, tzinfo=SHANGHAI))  # December
    TaskFactory(owner=user, num_images=3, created_at=datetime(2026, 1, 1, 0, 0, tzinfo=SHANGHAI))
    ask(user, 2)
    with pytest.raises(QuotaExceeded) as refused:
        ask(user)
    assert refused.value.kind == "images_per_month"
    assert refused.value.resets_at == datetime(2026, 2, 1, tzinfo=SHANGHAI)
    assert refused.value.exceeded.retry_after == 3600
    clock.set(datetime(2026, 2, 1, 0, 0, tzinfo=SHANGHAI))
    ask(user, 4)
    ask(user, 1)
    with pytest.raises(QuotaExceeded):
        ask(user)


def test_failed_and_canceled_tasks_give_their_images_back_and_deleting_images_does_not(user, settings):
    settings.QUOTA_IMAGES_PER_DAY = 4
    TaskFactory(owner=user, num_images=4, status=Task.Status.FAILED)
    TaskFactory(owner=user, num_images=4, status=Task.Status.CANCELED)
    pending = ask(user, 2)
    done = TaskFactory(owner=user, num_images=2, status=Task.Status.COMPLETED)
    with pytest.raises(QuotaExceeded):
        ask(user)
    done.delete()  # deleting what was made does not refund
    TaskFactory(owner=user, num_images=2, status=Task.Status.COMPLETED)
    with pytest.raises(QuotaExceeded):
        ask(user)
    pending.cancel()
    ask(user, 2)


def test_quotas_are_per_person(user, other_user, settings):
    settings.QUOTA_IMAGES_PER_DAY = 1
    ask(user)
    with pytest.raises(QuotaExceeded):
        ask(user)
    ask(other_user)


# --- who gets which limit -------------------------------------------------------------------


def test_a_person_gets_their_own_quota_else_the_most_generous_group_else_the_settings(user, settings):
    settings.QUOTA_IMAGES_PER_DAY = 5
    settings.QUOTA_IMAGES_PER_MONTH = 50
    settings.QUOTA_SPEND_PER_MONTH = None
    assert limits_for(user).images_per_day == 5
    small, large, silent = (
        Group.objects.create(name="small"),
        Group.objects.create(name="large"),
        Group.objects.create(name="silent"),
    )
    Quota.objects.create(group=small, images_per_day=10, images_per_month=20)
    Quota.objects.create(group=large, images_per_day=30)
    Quota.objects.create(group=silent)  # sets nothing: the next level decides
    user.groups.add(small, large, silent)
    limits = limits_for(user)
    assert (limits.images_per_day, limits.images_per_month, limits.spend_per_month) == (30, 20, None)
    Quota.objects.create(user=user, images_per_day=2, spend_per_month=Decimal("3.50"))
    limits = limits_for(user)
    # The person's own values win, each on its own; what they leave empty comes from the groups.
    assert (limits.images_per_day, limits.images_per_month, limits.spend_per_month) == (2, 20, Decimal("3.50"))


def test_a_group_override_lifts_the_default_and_a_personal_one_lowers_it_again(user, settings):
    settings.QUOTA_IMAGES_PER_DAY = 1
    team = Group.objects.create(name="team")
    Quota.objects.create(group=team, images_per_day=3)
    user.groups.add(team)
    ask(user, 3)
    with pytest.raises(QuotaExceeded):
        ask(user)
    Quota.objects.create(user=UserFactory(), images_per_day=100)  # someone else's: no effect
    with pytest.raises(QuotaExceeded):
        ask(user)
    Quota.objects.filter(group=team).update(images_per_day=4)
    ask(user)


# --- spend ----------------------------------------------------------------------------------


def test_spend_counts_recorded_costs_and_the_expected_cost_of_running_tasks(user, settings):
    settings.QUOTA_SPEND_PER_MONTH = Decimal("1.00")
    settings.USAGE_CURRENCY = "USD"
    ModelPrice.objects.create(provider="offline", model="sketch-v1", price_per_image=Decimal("0.25"), currency="USD")
    TaskFactory(owner=user, num_images=2, status=Task.Status.COMPLETED, cost=Decimal("0.50"), cost_currency="USD")
    TaskFactory(owner=user, num_images=1, status=Task.Status.PROCESSING)  # expected: 0.25
    TaskFactory(owner=user, num_images=4, status=Task.Status.FAILED)  # costs nothing
    with pytest.raises(QuotaExceeded) as refused:
        ask(user, 2)  # 0.75 + 0.50 > 1.00
    assert refused.value.kind == "spend_per_month"
    assert "1.00 USD per month" in refused.value.exceeded.message
    ask(user, 1)  # exactly 1.00


def test_spend_in_another_currency_is_converted_at_the_configured_rate(user, settings):
    settings.QUOTA_SPEND_PER_MONTH = Decimal("1.00")
    settings.USAGE_CURRENCY = "USD"
    settings.USAGE_EXCHANGE_RATES = {"CNY": Decimal("0.5")}
    ModelPrice.objects.create(provider="offline", model="sketch-v1", price_per_image=Decimal("1"), currency="CNY")
    ask(user, 2)  # 2 CNY = 1.00 USD
    with pytest.raises(QuotaExceeded):
        ask(user, 1)
    # Without a rate the cost cannot be compared with the quota: it is not counted (README).
    settings.USAGE_EXCHANGE_RATES = {}
    ask(user, 1)


def test_a_free_model_is_never_refused_by_a_spend_quota(user, settings):
    settings.QUOTA_SPEND_PER_MONTH = Decimal("0")
    ask(user, 4)  # the offline sketch costs nothing
    ModelPrice.objects.create(provider="offline", model="sketch-v1", price_per_image=Decimal("0.01"), currency="USD")
    with pytest.raises(QuotaExceeded):
        ask(user, 1)


# --- where it is shown ----------------------------------------------------------------------


def test_the_create_page_shows_the_refusal_in_place_next_to_generate(auth_client, user, settings):
    settings.QUOTA_IMAGES_PER_DAY = 0
    form = {"prompt": "a kite", "model": "offline:sketch-v1", "size": "256x256", "num_images": "1"}
    htmx = auth_client.post(reverse("generator:create"), form, HTTP_HX_REQUEST="true")
    assert htmx.status_code == 429 and htmx["HX-Retarget"] == "#form-problem"
    assert "0 images per day" in htmx.content.decode() and "<html" not in htmx.content.decode()
    plain = auth_client.post(reverse("generator:create"), form)
    html = plain.content.decode()
    assert plain.status_code == 429 and int(plain["Retry-After"]) > 0
    assert '<div id="form-problem"' in html and "0 images per day" in html
    assert html.index('class="primary generate-button"') < html.index("0 images per day")
    assert "a kite</textarea>" in html  # the form keeps what was typed
    assert not Task.objects.filter(owner=user).exists()


def test_retry_in_the_history_is_refused_the_same_way(auth_client, user, settings):
    settings.QUOTA_IMAGES_PER_DAY = 1
    failed = TaskFactory(owner=user, status=Task.Status.FAILED)
    TaskFactory(owner=user, status=Task.Status.COMPLETED)
    response = auth_client.post(reverse("generator:task_retry", args=[failed.pk]))
    assert response.status_code == 429
    assert "1 image per day" in response.content.decode()
    assert Task.objects.filter(owner=user).count() == 2


def test_staff_retries_in_the_admin_say_which_owner_is_over_quota(admin_client, user, settings):
    settings.QUOTA_IMAGES_PER_DAY = 1
    failed = TaskFactory(owner=user, status=Task.Status.FAILED)
    TaskFactory(owner=user, status=Task.Status.COMPLETED)
    response = admin_client.post(
        reverse("admin:generator_task_changelist"),
        {"action": "retry_tasks", "_selected_action": [str(failed.pk)]},
        follow=True,
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert "Refused 1 task over its owner" in text and "1 image per day" in text
    assert Task.objects.filter(owner=user).count() == 2


def test_system_info_lists_the_quotas_with_their_resets(auth_client, user, settings, clock):
    settings.QUOTA_IMAGES_PER_DAY = 10
    settings.QUOTA_IMAGES_PER_MONTH = None
    settings.QUOTA_SPEND_PER_MONTH = Decimal("5")
    TaskFactory(
        owner=user,
        num_images=3,
        status=Task.Status.COMPLETED,
        cost=Decimal("1.5"),
        cost_currency="USD",
        created_at=clock.now,
    )
    limits = auth_client.get("/api/v1/system/info").json()["limits"]
    assert limits["images_per_day"] == {"used": 3, "max": 10, "resets_at": "2026-03-09T16:00:00+00:00"}
    assert limits["images_per_month"] == {"used": 3, "max": None, "resets_at": "2026-03-31T16:00:00+00:00"}
    assert limits["spend_per_month"] == {
        "used": 1.5,
        "max": 5.0,
        "currency": "USD",
        "resets_at": "2026-03-31T16:00:00+00:00",
    }


# --- at once --------------------------------------------------------------------------------


def test_twenty_concurrent_submissions_stop_exactly_at_the_quota(live_server, transactional_db, settings):
    settings.MAX_QUEUED_TASKS_PER_USER = 100
    settings.GENERATE_RATE = "100/m"
    settings.QUOTA_IMAGES_PER_DAY = 7
    user = UserFactory()
    session = api_session(live_server, user)
    body = {"prompt": "a kite", "width": 256, "height": 256, "num_images": 1}

    def submit(_):
        return session.post(live_server.url + GENERATE, json=body, timeout=60).status_code

    from django_q.conf import Conf

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Conf, "SYNC", False)  # queue them; no worker runs, so they stay waiting
        with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
            codes = list(pool.map(submit, range(20)))
    assert sorted(codes) == [201] * 7 + [429] * 13
    assert Task.objects.filter(owner=user).count() == 7
    assert QuotaRefusal.objects.filter(owner=user).count() == 13


# --- the settings ---------------------------------------------------------------------------


def test_quota_settings_read_empty_as_unlimited_and_refuse_nonsense():
    assert config.image_limit("QUOTA_IMAGES_PER_DAY", "") is None
    assert config.image_limit("QUOTA_IMAGES_PER_DAY", " 0 ") == 0
    assert config.spend_limit("QUOTA_SPEND_PER_MONTH", "12.50") == Decimal("12.50")
    assert config.exchange_rates("USAGE_EXCHANGE_RATES", "cny=0.14, EUR=1.08") == {
        "CNY": Decimal("0.14"),
        "EUR": Decimal("1.08"),
    }
    for call, raw in (
        (config.image_limit, "-1"),
        (config.image_limit, "ten"),
        (config.spend_limit, "-5"),
        (config.spend_limit, "NaN"),
        (config.currency, "dollars"),
        (config.exchange_rates, "CNY"),
        (config.exchange_rates, "CNY=0"),
    ):
        with pytest.raises(ImproperlyConfigured, match="QUOTA|USAGE"):
            call("QUOTA_OR_USAGE_SETTING", raw)
