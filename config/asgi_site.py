"""Django's ASGI handler for the site, serving its ordinary (sync) views the way gthread did.

Stock Django serves a sync view over ASGI through asgiref: each request gets a thread of its own
(ThreadSensitiveContext), made for it and dropped after it, and the middleware's hooks, the
view and the rendering each cross to that thread and back (six crossings for the task poll). A
thread that lives for one request cannot keep a database connection, so every request also
opened one (Django advises CONN_MAX_AGE=0 under ASGI). Measured against gunicorn's gthread
worker at the same processes and threads, that served the task poll at about half the rate
(bench/serving.py; docs/PERFORMANCE.md).

Here a sync view's whole request runs in one call on a fixed pool of WEB_THREADS threads per
process, as gthread ran it: the request signals (their connection housekeeping is for this
thread's connection), the middleware, the view, reading a file response's bytes and closing
the response. The event loop only reads the body and sends the answer. The pool's threads live
as long as the process, so they keep their database connections (CONN_MAX_AGE, checked
before reuse, as under gthread). The address is resolved once, on the loop, to choose the
path; the pool reuses that match. Async views (the event stream) take Django's own path and
wait on the event loop without a thread. /v1/ never comes here (gateway.asgi).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.urls import Resolver404, ResolverMatch, get_resolver, set_script_prefix


class SiteHandler(ASGIHandler):
    def __init__(self, threads: int) -> None:
        super().__init__()  # Django's async middleware chain: for async views
        self.sync_handler = _PoolHandler()
        self.sync_handler.load_middleware(is_async=False)
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="site")

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        match = resolve(path_info(scope))
        if is_async(match):
            # No ThreadSensitiveContext (it is what makes a thread per request): the stream's
            # few thread-sensitive calls run briefly on asgiref's one shared thread.
            await self.handle(scope, receive, send)
            return
        try:
            body = await self.read_body(receive)
        except RequestAborted:
            return
        try:
            response = await asyncio.get_running_loop().run_in_executor(self.pool, self.respond, scope, body, match)
            # A sync view cannot be stopped once it runs, so a client gone meanwhile is not
            # listened for (Django's handler would only stop sending to it).
            await self.send_response(response, send)
            if _is_async_stream(response):
                await sync_to_async(response.close)()
        finally:
            body.close()

    def respond(self, scope: dict, body: IO[bytes], match: ResolverMatch | None) -> HttpResponseBase:
        """The request as gthread served it, on a pool thread, from request_started to the
        response closed (request_finished), its content read whole."""
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body)
        if request is not None:
            request.site_match = match  # type: ignore[attr-defined]  # see _PoolHandler
            response = self.sync_handler.get_response(request)
        assert response is not None
        response._handler_class = self.__class__  # type: ignore[attr-defined]
        if _is_async_stream(response):
            return response  # read on the loop, closed after
        if response.streaming:
            # Django's ASGI handler reads a sync iterator whole too (sync_to_async(list)).
            response.streaming_content = _replay(list(response.streaming_content))  # type: ignore[attr-defined]
        response.close()  # request_finished: this thread's connection housekeeping
        return response


class _PoolHandler(BaseHandler):
    def resolve_request(self, request: HttpRequest) -> ResolverMatch:
        """The match SiteHandler found for the address, unless a middleware chose another
        URLconf for the request since."""
        match = getattr(request, "site_match", None)
        if match is None or hasattr(request, "urlconf"):
            return super().resolve_request(request)
        request.resolver_match = match
        return match


def path_info(scope: dict) -> str:
    """The address as Django's ASGIRequest sets path_info."""
    script_name = get_script_prefix(scope)
    return scope["path"].removeprefix(script_name) if script_name else scope["path"]


def resolve(path: str) -> ResolverMatch | None:
    try:
        return get_resolver().resolve(path)
    except Resolver404:
        return None


def is_async(match: ResolverMatch | None) -> bool:
    """Whether the matched view is async (the event stream); an unknown address is not."""
    return match is not None and iscoroutinefunction(match.func)


def _is_async_stream(response: HttpResponseBase) -> bool:
    return response.streaming and getattr(response, "is_async", False)


async def _replay(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
