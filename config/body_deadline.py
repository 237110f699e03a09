"""A deadline for reading a request's body: over WSGI (BodyDeadline) and ASGI (AsgiBodyDeadline).

gunicorn's gthread worker bounds how long it waits for a request to start, but once a request
is in, a thread reads its body (or, after answering, drains it) for as long as the client keeps
trickling bytes: ten slow clients hold eight threads, /healthz included, indefinitely. nginx in
front (deploy/nginx.conf) buffers bodies so this never reaches gunicorn; this is the app
server's own bound for when it is reached directly anyway.

A request with a body has it read here, whole, within WEB_BODY_SECONDS, before Django sees it
(bodies here are small forms and JSON; nginx caps them at 1 MB). Past the deadline one watchdog
thread shuts the connection's reading side: the blocked read returns with what has arrived,
the client gets 408 and the connection closes, so the thread is free at once. A body larger
than anything Atelier accepts is refused (413) without being read.

gunicorn now serves the ASGI app (config/asgi.py) with uvicorn workers: there a slow body holds
no thread, only its connection, and AsgiBodyDeadline answers 408 at the same deadline. The WSGI
middleware stays for config/wsgi.py (any WSGI server one prefers).
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import io
import itertools
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict, StartResponse], Iterable[bytes]]


class Watchdog:
    """One thread that shuts the reading side of sockets whose deadline passed."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._heap: list[tuple[float, int, socket.socket]] = []
        self._armed: set[int] = set()
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, sock: socket.socket, deadline: float) -> int:
        with self._lock:
            ticket = next(self._ids)
            heapq.heappush(self._heap, (deadline, ticket, sock))
            self._armed.add(ticket)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="body-deadline", daemon=True)
                self._thread.start()
            self._lock.notify()
            return ticket

    def disarm(self, ticket: int) -> None:
        with self._lock:
            self._armed.discard(ticket)

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._heap:
                    self._lock.wait()
                deadline, ticket, sock = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._lock.wait(timeout=wait)
                    continue
                heapq.heappop(self._heap)
                if ticket not in self._armed:
                    continue
                self._armed.discard(ticket)
            try:
                sock.shutdown(socket.SHUT_RD)
            except OSError:  # closed meanwhile
                pass


WATCHDOG = Watchdog()


MAX_BUFFERED_BODY = 16 * 1024 * 1024  # far above DATA_UPLOAD_MAX_MEMORY_SIZE and nginx's 1 MB
CHUNK = 64 * 1024


class BodyDeadline:
    """WSGI middleware: the body of a request served by gunicorn is read within `seconds`."""

    def __init__(self, app: WSGIApp, seconds: float, watchdog: Watchdog = WATCHDOG) -> None:
        self.app, self.seconds, self.watchdog = app, seconds, watchdog

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        sock = environ.get("gunicorn.socket")
        raw_length = environ.get("CONTENT_LENGTH") or ""
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        length = int(raw_length) if raw_length.isdigit() else None
        if self.seconds <= 0 or not isinstance(sock, socket.socket) or not (chunked or length):
            return self.app(environ, start_response)
        if length is not None and length > MAX_BUFFERED_BODY:
            return _refuse(sock, start_response, "413 Content Too Large")
        ticket = self.watchdog.arm(sock, time.monotonic() + self.seconds)
        try:
            body = _read(environ["wsgi.input"], length)
        finally:
            self.watchdog.disarm(ticket)
        if body is None:
            return _refuse(sock, start_response, "408 Request Timeout")
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return self.app(environ, start_response)


def _read(stream: Any, length: int | None) -> bytes | None:
    """The whole body (`length` bytes, or up to the end of a chunked one), or None when it
    ended early: the watchdog cut it off, or the client went away."""
    parts, size = [], 0
    while length is None or size < length:
        chunk = stream.read(CHUNK if length is None else min(CHUNK, length - size))
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
        if size > MAX_BUFFERED_BODY:
            return None
    if length is not None and size < length:
        return None
    return b"".join(parts)


def _refuse(sock: socket.socket, start_response: StartResponse, status: str) -> list[bytes]:
    # Nothing more is read from this connection: gunicorn then closes it instead of draining.
    try:
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass
    text = status.encode() + b"\n"
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(text)))])
    return [text]


# --- the same bound over ASGI (config/asgi.py) -------------------------------------------

ASGIApp = Callable[..., Awaitable[None]]


class AsgiBodyDeadline:
    """ASGI middleware: a request's body is read, whole, within `seconds`, or answered 408.

    Over ASGI a slow body holds no thread (the worker's event loop waits for it), so /healthz
    stays answered; this bounds how long it may hold a connection and its memory. A body larger
    than anything Atelier accepts is refused (413) unread. The inner app gets the body as read.
    """

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app, self.seconds = app, seconds

    async def __call__(self, scope: dict, receive: Callable[[], Awaitable[dict]], send: Any) -> None:
        if scope["type"] != "http" or self.seconds <= 0:
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        raw_length = headers.get(b"content-length", b"").decode("latin-1")
        chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        length = int(raw_length) if raw_length.isdigit() else None
        if not (chunked or length):
            return await self.app(scope, receive, send)
        if length is not None and length > MAX_BUFFERED_BODY:
            return await _refuse_asgi(send, 413, b"413 Content Too Large\n")
        messages: list[dict] = []
        size = 0
        try:
            async with asyncio.timeout(self.seconds):
                while True:
                    message = await receive()
                    if message["type"] != "http.request":
                        return  # the client went away
                    messages.append(message)
                    size += len(message.get("body", b""))
                    if size > MAX_BUFFERED_BODY:
                        return await _refuse_asgi(send, 413, b"413 Content Too Large\n")
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            return await _refuse_asgi(send, 408, b"408 Request Timeout\n")
        queued = collections.deque(messages)

        async def replay() -> dict:
            return queued.popleft() if queued else await receive()

        return await self.app(scope, replay, send)


async def _refuse_asgi(send: Any, status: int, text: bytes) -> None:
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(text)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": text})
