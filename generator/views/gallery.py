"""The gallery: a person's images, newest first, with filters and bulk actions."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from ..models import Image
from ..ownership import owned
from .http import AuthenticatedHttpRequest

GALLERY_PAGE_SIZE = 48


@require_GET
def gallery(request: AuthenticatedHttpRequest) -> HttpResponse:
    images = owned(Image, request).select_related("task")
    page = Paginator(images, GALLERY_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "generator/gallery.html", {"page": page})


@require_POST
def bulk(request: AuthenticatedHttpRequest) -> HttpResponse:
    raise Http404("not built yet")


@require_POST
def download(request: AuthenticatedHttpRequest) -> HttpResponse:
    raise Http404("not built yet")
