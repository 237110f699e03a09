"""The image files: every <img> on the pages, downloads, and the API's file endpoints.

Owner-checked (staff with the admin's view permission see all, for its thumbnails), then
streamed from local disk, handed to nginx (X-Accel-Redirect) or redirected to a short-lived
signed bucket link. Routed under /api/v1/images/ (the API's public contract), so they answer
like the API: a JSON 404, and bearer tokens work.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.db.models.fields.files import FieldFile
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseNotModified,
    HttpResponseRedirect,
)
from django.utils.http import content_disposition_header, http_date
from django.utils.translation import gettext as _

from ..api.http import api_view, error
from ..lib import imaging
from ..lib.storage import stored_locally
from ..models import Image
from ..ownership import viewable_image

# Kept by the browser for a day, then asked again (a 304 while it is unchanged): a picture
# deleted, or seen on a shared computer before signing out, does not linger for a year.
IMAGE_CACHE = "private, max-age=86400, must-revalidate"


# What serve_image reads of an image for its thumbnail (the owner check is the queryset's).
THUMBNAIL_FIELDS = ("pk", "owner_id", "thumbnail", "created_at")


@api_view("GET", page_asset=True)
def image_file(request: HttpRequest, image_id: str) -> HttpResponseBase:
    return _serve(request, image_id, thumbnail=False)


@api_view("GET", page_asset=True)
def image_thumbnail(request: HttpRequest, image_id: str) -> HttpResponseBase:
    return _serve(request, image_id, thumbnail=True)


def _serve(request: HttpRequest, image_id: str, *, thumbnail: bool) -> HttpResponseBase:
    # A thumbnail is the hot path of every gallery page: only what serving the file needs.
    image = viewable_image(request, image_id, only=THUMBNAIL_FIELDS if thumbnail else ())
    if image is None:
        return error(404, "not_found", _("No such image."))
    return serve_image(request, image, thumbnail=thumbnail)


def serve_image(
    request: HttpRequest,
    image: Image,
    *,
    thumbnail: bool,
    cache_control: str = IMAGE_CACHE,
    etag_key: str = "",
) -> HttpResponseBase:
    """Answer with `image`'s original or thumbnail, once the caller has decided this request
    may see it (`?download` makes the original an attachment, `&metadata=0` strips its text).
    `etag_key` goes into the ETag, so a copy kept under one grant (a share link's id, say) is
    not revalidated under another; `cache_control` says how long copies may be kept."""
    etag = f'"{image.pk}-{"t" if thumbnail else "o"}{"-" + etag_key if etag_key else ""}"'
    if request.headers.get("If-None-Match") == etag:
        response: HttpResponseBase = HttpResponseNotModified()
    else:
        stored = image.thumbnail if thumbnail else image.file
        content_type = "image/webp" if thumbnail else image.mime
        download = not thumbnail and "download" in request.GET
        filename = f"atelier-{image.pk}.png"
        if download and request.GET.get("metadata") == "0":
            stripped = stripped_original(image, download=True, cache_control="private, no-store")
            return stripped or error(404, "not_found", _("The image file is missing."))
        if not stored_locally(stored.storage):
            return _signed_redirect(stored, download=download, filename=filename)
        if settings.SERVE_MEDIA_WITH == "x-accel":
            if not stored.name or not stored.storage.exists(stored.name):
                return error(404, "not_found", _("The image file is missing."))
            response = HttpResponse(content_type=content_type)
            response["X-Accel-Redirect"] = settings.X_ACCEL_PREFIX.rstrip("/") + "/" + quote(stored.name)
            if download:
                response["Content-Disposition"] = _attachment(filename)
        else:
            try:
                handle = stored.open("rb")
            except (FileNotFoundError, ValueError):
                return error(404, "not_found", _("The image file is missing."))
            response = FileResponse(handle, content_type=content_type, as_attachment=download, filename=filename)
    response["ETag"] = etag
    response["Cache-Control"] = cache_control
    response["Last-Modified"] = http_date(image.created_at.timestamp())
    return response


def stripped_original(image: Image, *, download: bool, cache_control: str) -> HttpResponse | None:
    """The original without the prompt and settings its PNG carries (read through the storage,
    so from a bucket too); None when the file is missing or unreadable, for the caller to
    answer in its own way."""
    try:
        with image.file.open("rb") as handle:
            png = imaging.without_text(handle.read())
    except (FileNotFoundError, ValueError, imaging.InvalidImage):
        return None
    response = HttpResponse(png, content_type="image/png")
    if download:
        response["Content-Disposition"] = _attachment(f"atelier-{image.pk}.png")
    response["Cache-Control"] = cache_control
    return response


def _attachment(filename: str) -> str:
    header = content_disposition_header(True, filename)
    assert header is not None  # only an inline answer without a filename has none
    return header


def _signed_redirect(stored: FieldFile, *, download: bool, filename: str) -> HttpResponse:
    """302 to a short-lived signed link (S3_PRESIGNED_SECONDS), never cached: it expires."""
    if not stored.name:
        return error(404, "not_found", _("The image file is missing."))
    if download:
        # A bucket's storage (django-storages' S3Storage) signs response headers into the link.
        bucket: Any = stored.storage
        url = bucket.url(stored.name, parameters={"ResponseContentDisposition": _attachment(filename)})
    else:
        url = stored.storage.url(stored.name)
    response = HttpResponseRedirect(url)
    response["Cache-Control"] = "private, no-store"
    return response
