"""Django's ASGI handler for the site, serving its ordinary (sync) views the way gthread did.

Stock Django serves a sync view over ASGI through asgiref: each request gets a thread of its own
(ThreadSensitiveContext), made for it and dropped after it, and the middleware's hooks, the
view and the rendering each cross to that thread and back (six crossings for the task poll). A
thread that lives for one request cannot keep a database connection, so every request also
opened one (Django advises CONN_MAX_AGE=0 under ASGI). Measured against gunicorn's gthread
worker at the same processes and threads, that served the task poll at about half the rate
(bench/serving.py; docs/PERFORMANCE.md).

Here a sync view's whole request (middleware, view, rendering, and reading a file response's
bytes) runs in one call on a fixed pool of WEB_THREADS threads per process, as gthread ran it;
those threads live as long as the process, so they keep their database connections
(CONN_MAX_AGE, checked before reuse, as under gthread). Async views (the event stream) take
Django's own async path and wait on the event loop without a thread. /v1/ never comes here
(gateway.asgi).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.db import close_old_connections
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.urls import Resolver404, get_resolver


class SiteHandler(ASGIHandler):
    def __init__(self, threads: int) -> None:
        super().__init__()  # Django's async middleware chain: for async views
        self.sync_handler = BaseHandler()
        self.sync_handler.load_middleware(is_async=False)
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="site")

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        # No ThreadSensitiveContext (it is what makes a thread per request): the few
        # thread-sensitive calls left (the request signals' receivers, closing the response) run
        # briefly on asgiref's one shared thread.
        await self.handle(scope, receive, send)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        if serves_async(request):
            return await super().get_response_async(request)
        return await asyncio.get_running_loop().run_in_executor(self.pool, self.respond, request)

    def respond(self, request: HttpRequest) -> HttpResponseBase:
        """The request as gthread served it, on a pool thread; the request signals' connection
        housekeeping (request_started, request_finished) for this thread's connection."""
        close_old_connections()
        try:
            response = self.sync_handler.get_response(request)
            if response.streaming and not getattr(response, "is_async", False):
                # Django's ASGI handler reads a sync iterator whole too (sync_to_async(list));
                # here on this thread, not on another one.
                response.streaming_content = _replay(list(response.streaming_content))  # type: ignore[attr-defined]
            return response
        finally:
            close_old_connections()


def serves_async(request: HttpRequest) -> bool:
    """Whether the address's view is async (the event stream); an unknown address is not."""
    try:
        match = get_resolver(getattr(request, "urlconf", None)).resolve(request.path_info)
    except Resolver404:
        return False
    return iscoroutinefunction(match.func)


async def _replay(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
