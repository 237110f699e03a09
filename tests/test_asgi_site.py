"""The site's ASGI handler (config/asgi_site.py), called as uvicorn calls it: pages on a fixed
pool of threads that keep their database connections, the event stream on the event loop, and
the same answers (owner checks included) as Django's own handler gives."""

from __future__ import annotations

import asyncio
import threading
import warnings
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.db.backends.signals import connection_created
from django.test import Client
from django.urls import reverse

from config.asgi_site import SiteHandler, is_async, resolve
from generator import live
from tests.factories import TaskFactory

THREADS = 2


@pytest.fixture
def handler(transactional_db, monkeypatch):
    # The production default (config/settings.py); the test settings may differ.
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 600)
    site = SiteHandler(THREADS)
    yield site
    # Each pool thread closes its own connection (connections are per thread).
    barrier = threading.Barrier(THREADS)

    def close() -> None:
        connections.close_all()
        barrier.wait(5)

    for future in [site.pool.submit(close) for _ in range(THREADS)]:
        future.result()
    site.pool.shutdown()
    # The event stream's sign-in ran on asgiref's one shared thread: its
    # kept connection would stop PostgreSQL from dropping the test database.
    asyncio.run(sync_to_async(connections.close_all, thread_sensitive=True)())


def cookie_of(client: Client) -> bytes:
    return "; ".join(f"{name}={morsel.value}" for name, morsel in client.cookies.items()).encode()


def scope(path: str, cookie: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"cookie", cookie), *(headers or [])],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


async def get(
    site: SiteHandler, path: str, cookie: bytes, headers=None, *, method: str = "GET", body: bytes = b""
) -> tuple[int, dict[bytes, bytes], bytes]:
    """One request to its end: status, headers and the whole body."""
    sent: list[dict] = []
    # the body in two parts, as a server may pass it on
    incoming = [
        {"type": "http.request", "body": body[:5], "more_body": True},
        {"type": "http.request", "body": body[5:], "more_body": False},
    ]
    never = asyncio.Event()

    async def receive() -> dict:
        if incoming:
            return incoming.pop(0)
        await never.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    await asyncio.wait_for(site({**scope(path, cookie, headers), "method": method}, receive, send), 10)
    start = sent[0]
    body = b"".join(message.get("body", b"") for message in sent[1:])
    return start["status"], {name.lower(): value for name, value in start["headers"]}, body


def test_pages_run_on_a_few_threads_that_keep_their_database_connections(handler, auth_client, user):
    task = TaskFactory(owner=user, prompt="a heron")
    opened: list[str] = []

    def count(sender, connection, **kwargs) -> None:
        opened.append(threading.current_thread().name)

    card = reverse("generator:task_card", args=[task.pk])
    htmx = [(b"hx-request", b"true")]
    connection_created.connect(count)
    try:

        async def twelve_requests() -> list[tuple[int, dict, bytes]]:
            return [await get(handler, card, cookie_of(auth_client), htmx) for _ in range(12)]

        answers = asyncio.run(twelve_requests())
    finally:
        connection_created.disconnect(count)
    assert all(status == 200 and b"a heron" in body for status, _, body in answers)
    # Django's own ASGI handler opens one per request (a thread per request, CONN_MAX_AGE=0).
    assert 1 <= len(opened) <= THREADS
    assert all(name.startswith("site") for name in opened)


def test_the_event_stream_waits_without_a_pool_thread_while_pages_answer(handler, auth_client, user):
    cookie = cookie_of(auth_client)
    events = reverse("generator:task_events")
    assert is_async(resolve(events))
    assert not is_async(resolve(reverse("generator:gallery")))
    assert not is_async(resolve("/no/such/page"))

    async def scenario() -> None:
        hung_up = asyncio.Event()
        streams: list[list[dict]] = []

        async def open_stream() -> asyncio.Task:
            sent: list[dict] = []
            streams.append(sent)
            first = asyncio.Event()
            requested = False

            async def receive() -> dict:
                nonlocal requested
                if not requested:
                    requested = True
                    return {"type": "http.request", "body": b"", "more_body": False}
                await hung_up.wait()
                return {"type": "http.disconnect"}

            async def send(message: dict) -> None:
                sent.append(message)
                if message.get("body"):
                    first.set()

            task = asyncio.create_task(handler(scope(events, cookie), receive, send))
            await asyncio.wait_for(first.wait(), 5)
            return task

        # more open streams than the pool has threads
        tasks = [await open_stream() for _ in range(THREADS + 1)]
        assert [sent[0]["status"] for sent in streams] == [200] * (THREADS + 1)
        assert all(sent[1]["body"] == b"retry: 3000\n\n" for sent in streams)
        assert live.HUB.count(user.pk) == THREADS + 1
        status, _, body = await get(handler, reverse("generator:gallery"), cookie)
        assert status == 200
        hung_up.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        assert live.HUB.count(user.pk) == 0

    asyncio.run(scenario())


def test_a_thumbnail_is_sent_whole_to_its_owner_and_to_nobody_else(handler, auth_client, other_client, completed_task):
    image = completed_task.images.first()
    path = reverse("api:image_thumbnail", args=[image.pk])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status, headers, body = asyncio.run(get(handler, path, cookie_of(auth_client)))
        others_status, _, _ = asyncio.run(get(handler, path, cookie_of(other_client)))
    assert (status, headers.get(b"content-type")) == (200, b"image/webp"), (status, headers, body[:300])
    assert body == Path(image.thumbnail.path).read_bytes()
    assert others_status == 404
    # Django's own handler warns that it must read a file response's iterator on another thread.
    assert not [warning for warning in caught if "synchronous iterators" in str(warning.message)]


def test_the_request_signals_run_on_the_pool_thread_and_the_address_is_resolved_once(
    handler, auth_client, user, monkeypatch
):
    from django.core import signals
    from django.urls import get_resolver
    from django.urls.resolvers import URLResolver

    task = TaskFactory(owner=user)
    card = reverse("generator:task_card", args=[task.pk])
    signalled: list[tuple[str, str]] = []

    def started(sender, **kwargs) -> None:
        signalled.append(("started", threading.current_thread().name))

    def finished(sender, **kwargs) -> None:
        signalled.append(("finished", threading.current_thread().name))

    root = get_resolver()
    resolved: list[str] = []
    original = URLResolver.resolve

    def counting(self, path):
        if self is root:
            resolved.append(path)
        return original(self, path)

    monkeypatch.setattr(URLResolver, "resolve", counting)
    signals.request_started.connect(started)
    signals.request_finished.connect(finished)
    try:
        status, _, _ = asyncio.run(get(handler, card, cookie_of(auth_client), [(b"hx-request", b"true")]))
    finally:
        signals.request_started.disconnect(started)
        signals.request_finished.disconnect(finished)
    assert status == 200
    # on the thread whose database connection they look after, not on asgiref's shared one
    assert [event for event, _ in signalled] == ["started", "finished"]
    assert all(name.startswith("site") for _, name in signalled), signalled
    assert resolved == [card]


def test_a_request_body_reaches_the_view(handler, user):
    from accounts.tokens import create_token
    from generator.models import Task

    token = create_token(user, "asgi").plaintext
    body = b'{"prompt": "a kite over dunes", "provider": "offline"}'
    headers = [(b"authorization", f"Bearer {token}".encode()), (b"content-type", b"application/json")]
    status, _, answer = asyncio.run(get(handler, "/api/v1/generate", b"", headers, method="POST", body=body))
    assert status == 201, answer
    assert Task.objects.get(owner=user).prompt == "a kite over dunes"
