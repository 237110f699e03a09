from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse


class HealthzMiddleware:
    """Answer /healthz and /readyz before host validation and HTTPS redirects, so a
    container's own probes on its own address work whatever ALLOWED_HOSTS says."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/healthz":
            return JsonResponse({"status": "ok"})
        if request.path == "/readyz":
            from .readiness import readyz

            return readyz(request)
        return self.get_response(request)
