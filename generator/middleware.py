from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse


class HealthzMiddleware:
    """Answer /healthz before host validation and HTTPS redirects, so a container's own
    health probe on 127.0.0.1 works whatever ALLOWED_HOSTS says."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/healthz":
            return JsonResponse({"status": "ok"})
        return self.get_response(request)
