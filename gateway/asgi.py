"""/v1/ over ASGI without a thread per waiting request.

Django serves every request through settings.MIDDLEWARE. Three of those middleware classes are
sync-only (health, WhiteNoise, django-ratelimit's), every MiddlewareMixin one runs its hooks
through a thread of the request's own, and the request_started signal starts that thread too:
a generation waiting five minutes on the event loop would still keep a thread for those five
minutes, and a hundred waiting generations a hundred threads.

None of that has anything to do for /v1/ (static files, health probes, sessions,
CSRF, htmx, frames, page security headers: the gateway authenticates by token and answers JSON
and PNGs). So gunicorn's ASGI app (config/asgi.py) hands /v1/ to a Django handler without
middleware and without per-request threads; gateway.http does the two things the gateway needs from it itself: the host check
(ALLOWED_HOSTS) and the language of its messages. The WSGI server (tests' live_server,
runserver) still serves /v1/ through the full stack.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response

PREFIX = "/v1/"
ASGIApp = Callable[[dict, Callable[..., Awaitable[Any]], Callable[..., Awaitable[Any]]], Awaitable[None]]


class GatewayHandler(ASGIHandler):
    """Django's ASGI handler with no middleware (what load_middleware builds for an empty list)
    and no ThreadSensitiveContext: that context gives each request a thread of its own, created
    at its first thread-sensitive call (the request_started signal's receivers) and kept until
    it ends. Without it, the few such calls left (those signals' receivers) share asgiref's one
    thread briefly; the gateway's views are async and do their work on the shared pool
    (gateway.http.in_pool)."""

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        await self.handle(scope, receive, send)

    def load_middleware(self, is_async: bool = False) -> None:
        django: Any = self  # django-stubs leave out BaseHandler's private attributes
        django._view_middleware, django._template_response_middleware, django._exception_middleware = [], [], []
        get_response = django._get_response_async if is_async else django._get_response
        django._middleware_chain = convert_exception_to_response(get_response)


def with_gateway(site: ASGIApp) -> ASGIApp:
    """`site` for every address but /v1/…, which goes to the GatewayHandler."""
    gateway = GatewayHandler()

    async def app(scope: dict, receive: Callable[..., Awaitable[Any]], send: Callable[..., Awaitable[Any]]) -> None:
        path = scope.get("path", "")[len(scope.get("root_path", "")) :]
        if scope["type"] == "http" and path.startswith(PREFIX):
            await gateway(scope, receive, send)
        else:
            await site(scope, receive, send)

    return app
