"""The counts on published images: exact under concurrency, views once per person per day,
downloads per file actually sent, and "popular" over the last 7 days only."""

from __future__ import annotations

import concurrent.futures
import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from sharing import reactions
from sharing.models import Like, Publication, PublicationDay, View

from .factories import PublicationFactory, UserFactory

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Clock:
    """The app's clock (timezone.now), set by the test."""

    def __init__(self, monkeypatch, start: datetime) -> None:
        self.now = start
        monkeypatch.setattr(timezone, "now", self)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch, settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    return Clock(monkeypatch, datetime(2026, 3, 9, 12, 0, tzinfo=SHANGHAI))


@pytest.fixture
def published(db):
    return PublicationFactory(image__task__owner=UserFactory())


def fresh(publication: Publication) -> Publication:
    return Publication.objects.get(pk=publication.pk)


# --- concurrency -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_counts_stay_exact_under_50_concurrent_likes_and_views_from_10_people():
    author = UserFactory()
    first, second = PublicationFactory(image__task__owner=author), PublicationFactory(image__task__owner=author)
    people = [UserFactory() for _ in range(10)]
    # Every person likes `first` twice (the second changes nothing) and views it twice (once a
    # day), and flips their like of `second` once: 50 acts, 10 at a time, in random-ish order.
    acts = [(person, "like", first) for person in people] * 2
    acts += [(person, "view", first) for person in people] * 2
    acts += [(person, "toggle", second) for person in people]

    def act(entry) -> None:
        person, verb, publication = entry
        try:
            if verb == "like":
                reactions.like(person, publication, True)
            elif verb == "toggle":
                reactions.like(person, publication, None)
            else:
                reactions.record_view(person, publication)
        finally:
            connection.close()  # this pool thread's own connection

    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(act, acts[::3] + acts[1::3] + acts[2::3]))

    first, second = fresh(first), fresh(second)
    assert (first.like_count, first.view_count, second.like_count) == (10, 10, 10)
    assert Like.objects.filter(publication=first).count() == 10 and View.objects.filter(publication=first).count() == 10
    day = PublicationDay.objects.get(publication=first)
    assert (day.likes, day.views) == (10, 10)
    # Likes move popular at once; views join at the next refresh.
    assert (first.popular_score, second.popular_score) == (3 * 10, 3 * 10)
    reactions.refresh_popular_scores()
    assert (fresh(first).popular_score, fresh(second).popular_score) == (3 * 10 + 10, 3 * 10)


@pytest.mark.django_db(transaction=True)
def test_concurrent_downloads_are_each_counted():
    publication = PublicationFactory(image__task__owner=UserFactory())

    def download(_index: int) -> None:
        try:
            reactions.record_download(publication)
        finally:
            connection.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(download, range(30)))
    assert fresh(publication).download_count == 30
    assert PublicationDay.objects.get(publication=publication).downloads == 30


# --- the verbs ---------------------------------------------------------------------------------


def test_a_like_of_a_hidden_publication_is_refused_and_changes_nothing(published, user):
    Publication.objects.filter(pk=published.pk).update(hidden_at=timezone.now())
    for verb in (reactions.like, reactions.favourite):
        with pytest.raises(Publication.DoesNotExist):
            verb(user, published, True)
    with pytest.raises(Publication.DoesNotExist):
        reactions.record_view(user, published)
    assert not Like.objects.exists() and not View.objects.exists() and not PublicationDay.objects.exists()
    assert (fresh(published).like_count, fresh(published).view_count) == (0, 0)


def test_authors_may_like_their_own_image(published):
    assert reactions.like(published.owner, published) is True
    assert fresh(published).like_count == 1
    assert reactions.like(published.owner, published) is False
    assert fresh(published).like_count == 0


def test_views_count_once_per_person_per_server_day(published, user, other_user, clock, auth_client):
    url = reverse("sharing:publication", args=[published.pk])
    auth_client.get(url)
    auth_client.get(url)
    assert fresh(published).view_count == 1
    clock.advance(hours=11, minutes=59)  # 23:59 in Shanghai: the same day (15:59 UTC)
    auth_client.get(url)
    assert fresh(published).view_count == 1
    clock.advance(minutes=2)  # 00:01 the next day in Shanghai, still the same UTC day
    auth_client.get(url)
    assert fresh(published).view_count == 2
    reactions.record_view(other_user, published)
    assert fresh(published).view_count == 3
    assert sorted(PublicationDay.objects.values_list("views", flat=True)) == [1, 2]


def test_downloads_count_on_download_only_and_not_on_304s(published, auth_client):
    url = reverse("sharing:publication_file", args=[published.pk])
    shown = auth_client.get(url)
    assert shown.status_code == 200 and fresh(published).download_count == 0
    auth_client.get(reverse("sharing:publication_thumbnail", args=[published.pk]))
    assert fresh(published).download_count == 0
    downloaded = auth_client.get(url, {"download": "1"})
    assert downloaded.status_code == 200 and "attachment" in downloaded["Content-Disposition"]
    assert b"".join(downloaded.streaming_content).startswith(b"\x89PNG")
    assert fresh(published).download_count == 1
    again = auth_client.get(url, {"download": "1"}, HTTP_IF_NONE_MATCH=downloaded["ETag"])
    assert again.status_code == 304 and fresh(published).download_count == 1
    assert PublicationDay.objects.get(publication=published).downloads == 1


# --- popular --------------------------------------------------------------------------------------


def test_popular_is_3_likes_2_downloads_1_view_over_the_last_7_days(published, user, other_user, clock):
    reactions.like(user, published, True)  # day 0
    clock.advance(days=6)
    reactions.record_download(published)  # day 6
    clock.advance(days=2)
    reactions.record_view(other_user, published)  # day 8
    reactions.refresh_popular_scores()
    # The like of 8 days ago no longer counts; the download of 2 days ago and today's view do.
    assert fresh(published).popular_score == 2 + 1
    assert fresh(published).like_count == 1  # the total stays
    assert PublicationDay.objects.filter(publication=published).count() == 2


def test_popular_counts_a_like_at_once_and_the_refresh_keeps_it_within_7_days(published, user, clock):
    reactions.like(user, published, True)
    assert fresh(published).popular_score == 3
    clock.advance(days=6, hours=11)  # 23:00 on the 7th day
    reactions.refresh_popular_scores()
    assert fresh(published).popular_score == 3
    clock.advance(hours=2)  # the 8th day
    reactions.refresh_popular_scores()
    assert fresh(published).popular_score == 0


def test_taking_back_an_old_like_never_makes_popular_negative(published, user, clock):
    reactions.like(user, published, True)
    clock.advance(days=8)
    reactions.refresh_popular_scores()
    reactions.like(user, published, False)  # today's bucket: -1 like
    assert fresh(published).popular_score == 0
    reactions.refresh_popular_scores()
    assert fresh(published).popular_score == 0 and fresh(published).like_count == 0


def test_the_refresh_popular_command_runs_the_same_refresh(published, user):
    PublicationDay.objects.create(publication=published, day=reactions.today(), likes=2, downloads=1, views=4)
    out = io.StringIO()
    call_command("refresh_popular", stdout=out)
    assert fresh(published).popular_score == 3 * 2 + 2 * 1 + 4
    assert out.getvalue() == "Popular scores refreshed: 1 changed.\n"


def test_setup_schedules_installs_the_popular_refresh_every_10_minutes(db):
    from django.utils.module_loading import import_string
    from django_q.models import Schedule

    call_command("setup_schedules", stdout=io.StringIO())
    schedule = Schedule.objects.get(name="atelier-refresh-popular")
    assert (schedule.schedule_type, schedule.minutes) == (Schedule.MINUTES, 10)
    assert import_string(schedule.func) is reactions.refresh_popular_scores
