"""The event stream an open page listens to: one `task` event whenever a task of its owner changes.

Served over ASGI (config/asgi.py) the stream is an async iterator on the event loop: an open
page holds no thread. The per-process Hub (generator.live) reads the owners' change markers
from the shared cache every 25 ms and wakes only the streams whose owner's marker moved; each
then asks the database once what changed. Under WSGI (the test server, `manage.py runserver`)
the same stream runs as a plain iterator in its request's thread.

Each event names the task and its status; the page fetches the card or row it shows through
the views it already polls (static/js/live.js). A comment every HEARTBEAT_SECONDS keeps
proxies from closing a quiet stream; a stream ends when its client goes away (Django cancels
it) or when the server shuts down (Hub.stop).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.db import connection
from django.http import HttpResponse, StreamingHttpResponse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from accounts.http import AuthenticatedHttpRequest

from .. import live

HEARTBEAT_SECONDS = 15.0
# A page reconnects this long after its stream dropped (the browser's EventSource does it).
RETRY_MS = 3000
# Open streams per person in one web process; past it the page polls instead. A browser opens
# at most six connections per host over HTTP/1.1, so a seventh tab must not take a stream.
MAX_STREAMS_PER_PERSON = 5
# Under WSGI a gone client is noticed only when a write fails: write a comment this often.
WSGI_HEARTBEAT_SECONDS = 2.0


@require_GET
async def task_events(request: AuthenticatedHttpRequest) -> HttpResponse | StreamingHttpResponse:
    user = await request.auser()
    owner_id = int(str(user.pk))
    if isinstance(request, ASGIRequest):
        if live.HUB.count(owner_id) >= MAX_STREAMS_PER_PERSON:
            text = _("Too many open pages are listening for changes; this one checks now and then instead.")
            return HttpResponse(text, status=429, content_type="text/plain; charset=utf-8")
        stream: AsyncIterator[str] | Iterator[str] = _events(owner_id)
    else:
        stream = _events_wsgi(owner_id)
    response = StreamingHttpResponse(stream, content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache, no-store"
    # nginx: pass each event on at once (deploy/nginx.conf also turns buffering off here).
    response["X-Accel-Buffering"] = "no"
    return response


def event(data: dict) -> str:
    return f"event: task\ndata: {json.dumps(data)}\n\n"


# The first bytes: how long to wait before reconnecting, and "ready" once the stream's view of
# the tasks is taken (the page then refreshes what it shows once: nothing missed before it).
PRELUDE = f"retry: {RETRY_MS}\n\n"
READY = "event: ready\ndata: {}\n\n"
KEEP_ALIVE = ": keep-alive\n\n"


def _snapshot_and_close(owner_id: int) -> live.Snapshot:
    """The owner's tasks, on a pool thread whose connection is not kept: streams are many and
    long, changes few."""
    try:
        return live.snapshot(owner_id, live.since())
    finally:
        connection.close()


async def _events(owner_id: int) -> AsyncIterator[str]:
    changed = live.HUB.watch(owner_id)
    read = sync_to_async(_snapshot_and_close, thread_sensitive=False)
    try:
        yield PRELUDE
        seen = await read(owner_id)
        yield READY
        while not live.HUB.stopping:
            try:
                async with asyncio.timeout(HEARTBEAT_SECONDS):
                    await changed.wait()
            except TimeoutError:
                yield KEEP_ALIVE
                continue
            changed.clear()
            if live.HUB.stopping:
                break
            now = await read(owner_id)
            for change in live.changes(seen, now):
                yield event(change)
            seen = now
    finally:
        live.HUB.unwatch(owner_id, changed)


def _events_wsgi(owner_id: int) -> Iterator[str]:
    yield PRELUDE
    marker = live.versions([owner_id]).get(owner_id)
    seen = live.snapshot(owner_id, live.since())
    yield READY
    quiet_since = time.monotonic()
    while True:
        time.sleep(live.POLL_SECONDS)
        current = live.versions([owner_id]).get(owner_id)
        if current != marker:
            marker = current
            now = live.snapshot(owner_id, live.since())
            for change in live.changes(seen, now):
                yield event(change)
            seen = now
        elif time.monotonic() - quiet_since >= WSGI_HEARTBEAT_SECONDS:
            quiet_since = time.monotonic()
            yield KEEP_ALIVE
