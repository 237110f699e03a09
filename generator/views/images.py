"""One image (page, and a modal from the grid), its favourite flag and tags; the tag page."""

from __future__ import annotations

from django.http import Http404, HttpResponse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .http import AuthenticatedHttpRequest


@require_GET
def image_detail(request: AuthenticatedHttpRequest, image_id: str) -> HttpResponse:
    raise Http404("not built yet")


@require_POST
def image_favorite(request: AuthenticatedHttpRequest, image_id: str) -> HttpResponse:
    raise Http404("not built yet")


@require_POST
def image_tag_add(request: AuthenticatedHttpRequest, image_id: str) -> HttpResponse:
    raise Http404("not built yet")


@require_POST
def image_tag_remove(request: AuthenticatedHttpRequest, image_id: str, tag_id: int) -> HttpResponse:
    raise Http404("not built yet")


@require_http_methods(["GET", "POST"])
def image_delete(request: AuthenticatedHttpRequest, image_id: str) -> HttpResponse:
    raise Http404("not built yet")


@require_GET
def tag_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    raise Http404("not built yet")


@require_GET
def tag_suggest(request: AuthenticatedHttpRequest) -> HttpResponse:
    raise Http404("not built yet")


@require_POST
def tag_rename(request: AuthenticatedHttpRequest, tag_id: int) -> HttpResponse:
    raise Http404("not built yet")


@require_POST
def tag_delete(request: AuthenticatedHttpRequest, tag_id: int) -> HttpResponse:
    raise Http404("not built yet")
