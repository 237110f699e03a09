"""Live updates: the change signal (generator.live) and the event stream (generator/views/events.py).

The stream is read here both ways Django serves it: as a plain iterator through the test client
(WSGI, the e2e server's way) and as the ASGI app's async iterator (gunicorn's way), where the
per-process Hub wakes it and a stopping server ends it.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from django.core.asgi import get_asgi_application
from django.core.cache import cache
from django.test import AsyncClient
from django.urls import reverse

from generator import live
from generator.models import Task
from generator.views import events
from tests.factories import TaskFactory, UserFactory

EVENTS = reverse("generator:task_events")


def test_a_change_is_published_only_once_its_write_commits(user, django_capture_on_commit_callbacks):
    before = live.versions([user.pk]).get(user.pk)
    with django_capture_on_commit_callbacks() as callbacks:
        live.task_changed(user.pk)
        assert live.versions([user.pk]).get(user.pk) == before
    for callback in callbacks:
        callback()
    assert live.versions([user.pk]).get(user.pk) not in (None, before)


def test_a_cache_that_fails_does_not_fail_the_write(user, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(cache, "set", broken)
    live._publish(user.pk)  # logged, not raised


def test_the_hub_reads_the_owners_keys_only_after_a_change_or_a_new_owner(user, other_user, monkeypatch):
    reads: list[list[int]] = []
    read_versions = live.versions
    monkeypatch.setattr(live, "versions", lambda owner_ids: reads.append(list(owner_ids)) or read_versions(owner_ids))
    live._publish(user.pk)
    hub = live.Hub()

    first = hub.moved([user.pk])
    assert reads == [[user.pk]] and first[user.pk] is not None
    assert hub.moved([user.pk]) == {}  # nothing published since: one key read, no owner's
    assert len(reads) == 1

    live._publish(user.pk)
    assert hub.moved([user.pk])[user.pk] != first[user.pk]
    assert len(reads) == 2

    hub.moved([user.pk, other_user.pk])  # someone opened a stream: their key is read at once
    assert reads[-1] == [user.pk, other_user.pk]
    assert hub.moved([user.pk, other_user.pk]) == {}
    assert len(reads) == 3


def test_changes_name_each_task_whose_shown_state_moved(user):
    task = TaskFactory(owner=user, status=Task.Status.PENDING)
    before = live.snapshot(user.pk, live.since())
    assert live.changes(before, before) == []
    Task.objects.filter(pk=task.pk).update(status=Task.Status.PROCESSING, progress=40)
    new = TaskFactory(owner=user, status=Task.Status.PENDING)
    after = live.snapshot(user.pk, live.since())
    assert sorted(live.changes(before, after), key=lambda c: c["id"] != str(task.pk)) == [
        {"id": str(task.pk), "status": "processing"},
        {"id": str(new.pk), "status": "pending"},
    ]


def test_the_stream_is_for_signed_in_people_only(client, db):
    response = client.get(EVENTS)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_stream_sends_a_task_event_when_a_task_of_its_owner_changes(auth_client, user, other_user):
    task = TaskFactory(owner=user, status=Task.Status.PENDING)
    theirs = TaskFactory(owner=other_user, status=Task.Status.PENDING)
    response = auth_client.get(EVENTS)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream; charset=utf-8"
    assert response["X-Accel-Buffering"] == "no"
    assert "no-cache" in response["Cache-Control"]
    stream = iter(response.streaming_content)
    assert next(stream) == b"retry: 3000\n\n"
    assert next(stream) == b"event: ready\ndata: {}\n\n"

    # Someone else's task changes: nothing for this stream.
    Task.objects.filter(pk=theirs.pk).update(status=Task.Status.COMPLETED)
    live._publish(other_user.pk)
    Task.objects.filter(pk=task.pk).update(status=Task.Status.PROCESSING, progress=10)
    live._publish(user.pk)
    assert _task_events(stream, 1) == [{"id": str(task.pk), "status": "processing"}]
    response.close()


def _task_events(stream, count: int) -> list[dict]:
    found = []
    for chunk in stream:
        text = chunk.decode()
        if text.startswith("event: task"):
            found.append(json.loads(text.split("data: ", 1)[1]))
            if len(found) == count:
                return found
    return found


# --- over ASGI ---------------------------------------------------------------------------


@pytest.fixture
def asgi_client(transactional_db):
    user = UserFactory()
    client = AsyncClient()
    client.force_login(user)
    client.user = user
    return client


async def _next_chunk(iterator, timeout: float = 5.0) -> str:
    return (await asyncio.wait_for(anext(iterator), timeout)).decode()


def test_over_asgi_the_hub_wakes_the_stream_and_a_stopping_server_ends_it(asgi_client):
    user = asgi_client.user
    task = TaskFactory(owner=user, status=Task.Status.PENDING)

    async def scenario() -> None:
        response = await asgi_client.get(EVENTS)
        assert response.status_code == 200
        assert response.is_async
        stream = aiter(response.streaming_content)
        assert await _next_chunk(stream) == "retry: 3000\n\n"
        assert await _next_chunk(stream) == "event: ready\ndata: {}\n\n"
        assert live.HUB.count(user.pk) == 1

        await asyncio.to_thread(Task.objects.filter(pk=task.pk).update, status=Task.Status.COMPLETED)
        await asyncio.to_thread(live._publish, user.pk)
        text = await _next_chunk(stream)
        assert text.startswith("event: task\n")
        assert json.loads(text.split("data: ", 1)[1]) == {"id": str(task.pk), "status": "completed"}

        live.HUB.stop()
        with pytest.raises(StopAsyncIteration):
            await _next_chunk(stream)
        assert live.HUB.count(user.pk) == 0

    try:
        asyncio.run(scenario())
    finally:
        live.HUB.stopping = False


class RawStream:
    """The ASGI app called as uvicorn calls it, with a client that can hang up."""

    def __init__(self, cookies) -> None:
        cookie = "; ".join(f"{name}={morsel.value}" for name, morsel in cookies.items())
        self.scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": EVENTS,
            "raw_path": EVENTS.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"testserver"), (b"cookie", cookie.encode())],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }
        self.sent: list[dict] = []
        self.hung_up = asyncio.Event()
        self.first_body = asyncio.Event()
        self.task: asyncio.Task | None = None

    async def start(self) -> None:
        requested = False

        async def receive() -> dict:
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await self.hung_up.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            self.sent.append(message)
            if message["type"] == "http.response.body" and (message.get("body") or not message.get("more_body")):
                self.first_body.set()

        self.task = asyncio.create_task(get_asgi_application()(self.scope, receive, send))
        await asyncio.wait_for(self.first_body.wait(), 5)

    @property
    def status(self) -> int:
        return self.sent[0]["status"]

    async def hang_up(self) -> None:
        self.hung_up.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, 5)


def test_over_asgi_a_stream_ends_when_its_client_hangs_up(asgi_client):
    async def scenario() -> None:
        stream = RawStream(asgi_client.cookies)
        await stream.start()
        assert stream.status == 200
        assert live.HUB.count(asgi_client.user.pk) == 1
        await stream.hang_up()
        assert live.HUB.count(asgi_client.user.pk) == 0

    asyncio.run(scenario())


def test_over_asgi_a_person_gets_a_few_streams_and_then_polls(asgi_client, monkeypatch):
    monkeypatch.setattr(events, "MAX_STREAMS_PER_PERSON", 2)

    async def scenario() -> None:
        streams = [RawStream(asgi_client.cookies) for _ in range(3)]
        for stream in streams:
            await stream.start()
        assert [stream.status for stream in streams] == [200, 200, 429]
        for stream in streams:
            await stream.hang_up()
        assert live.HUB.count(asgi_client.user.pk) == 0

    asyncio.run(scenario())


def test_a_quiet_stream_sends_a_comment_to_keep_proxies_from_closing_it(asgi_client, monkeypatch):
    monkeypatch.setattr(events, "HEARTBEAT_SECONDS", 0.2)

    async def scenario() -> list[bytes]:
        stream = RawStream(asgi_client.cookies)
        await stream.start()
        await asyncio.sleep(0.5)
        await stream.hang_up()
        return [message.get("body", b"") for message in stream.sent[1:]]

    bodies = asyncio.run(scenario())
    assert bodies[:2] == [b"retry: 3000\n\n", b"event: ready\ndata: {}\n\n"]
    assert b": keep-alive\n\n" in bodies[2:]
