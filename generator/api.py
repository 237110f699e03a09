"""The JSON API (v1). Paths and shapes are a public contract: change them only additively.

Errors are always {"error": code, "message": text, "details"?: {...}} with the right status.
Session or personal API token authentication (`Authorization: Bearer …`); session requests
that change something carry Django's CSRF token in X-CSRFToken.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import wraps
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt
from django.core.exceptions import RequestDataTooBig
from django.core.files.storage import Storage
from django.db.models.fields.files import FieldFile
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    HttpResponseNotModified,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import render
from django.utils.http import content_disposition_header, http_date
from django.utils.translation import gettext as _
from django.views.csrf import csrf_failure as default_csrf_failure

from accounts.tokens import authenticate_bearer, bearer_credentials

from . import limits, services
from .forms import GenerateForm
from .models import Image, Task
from .ownership import owned, viewable_images
from .providers import enabled_providers

IMMUTABLE_CACHE = "private, max-age=31536000, immutable"


def error(status: int, code: str, message: str, details: dict | None = None) -> JsonResponse:
    """`code` is for programs and never translated; `message` (and details) are for people."""
    body: dict = {"error": code, "message": str(message)}
    if details is not None:
        body["details"] = {field: [str(text) for text in texts] for field, texts in details.items()}
    return JsonResponse(body, status=status)


def api_view(*methods: str, page_asset: bool = False) -> Callable:
    """Signed-in JSON endpoints: 401 and 405 as JSON instead of redirects and empty bodies.

    A personal API token (`Authorization: Bearer …`) authenticates without CSRF; a bad token
    is a 401 and never falls back to the session. The session path keeps Django's CSRF check.
    Every call counts against the person's API_RATE, except a `page_asset` (an image file)
    fetched by a signed-in browser: a gallery page loads dozens of them at once.
    """

    def decorator(view: Callable) -> Callable:
        @csrf_exempt  # only for bearer tokens: the session path runs the CSRF check itself, below
        @login_not_required
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if bearer_credentials(request) is not None:
                user = authenticate_bearer(request)
                if user is None:
                    return error(401, "not_authenticated", _("The API token is malformed, unknown or revoked."))
                request.user = user
                counted = True
            else:
                rejected = _csrf_check(request)
                if rejected is not None:
                    return rejected
                if not request.user.is_authenticated:
                    return error(401, "not_authenticated", _("Sign in to use the API."))
                counted = not page_asset
            if counted and (limited := limits.api_rate_exceeded(request)) is not None:
                return limited
            if request.method not in methods:
                # Translators: %(methods)s are HTTP methods such as "GET or DELETE".
                allowed = _(" or ").join(methods)
                response = error(405, "method_not_allowed", _("Use %(methods)s here.") % {"methods": allowed})
                response["Allow"] = ", ".join(methods)
                return response
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def _csrf_check(request: HttpRequest) -> HttpResponse | None:
    """Django's CSRF check for the session path (a 403 from CSRF_FAILURE_VIEW, or None)."""
    return CsrfViewMiddleware(lambda request: HttpResponse()).process_view(request, None, (), {})


def _isoformat(value) -> str | None:
    return value.isoformat() if value else None


def image_json(image: Image, *, with_tags: bool = False) -> dict:
    data = {
        "image_id": str(image.pk),
        "url": image.url,
        "thumbnail_url": image.thumbnail_url,
        "width": image.width,
        "height": image.height,
        "file_size": image.bytes,
        "seed": image.seed,
    }
    if with_tags:  # the image list: enough to find the picture again without its task
        data.update(
            task_id=str(image.task_id),
            prompt=image.task.prompt,
            is_favorite=image.is_favorite,
            tags=sorted(tag.name for tag in image.tags.all()),
            created_at=_isoformat(image.created_at),
        )
    return data


def task_json(task: Task) -> dict:
    return {
        "task_id": str(task.pk),
        "status": task.status,
        "progress": task.progress,
        "prompt": task.prompt,
        "negative_prompt": task.negative_prompt,
        "provider": task.provider,
        "model": task.model,
        "width": task.width,
        "height": task.height,
        "num_images": task.num_images,
        "seed": task.seed,
        "images": [image_json(image) for image in task.ordered_images],
        "error": {"code": task.error_code, "message": task.error_text} if task.status == Task.Status.FAILED else None,
        "created_at": _isoformat(task.created_at),
        "started_at": _isoformat(task.started_at),
        "completed_at": _isoformat(task.finished_at),
    }


JSON_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "prompt": (str,),
    "negative_prompt": (str,),
    "provider": (str,),
    "model": (str,),
    "width": (int,),
    "height": (int,),
    "num_images": (int,),
    "steps": (int,),
    "scale": (int, float),
    "seed": (int,),
}


# json.loads joins escaped surrogate pairs into one character, so any surrogate left in a
# string is a lone one ("\ud800"): no database can store it.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _json_form_data(body: dict) -> tuple[dict, dict]:
    """Type-check JSON values before the form sees them (no `true` posing as 1)."""
    data, details = {}, {}
    for field, types in JSON_FIELD_TYPES.items():
        if field not in body or body[field] is None:
            continue
        value = body[field]
        if isinstance(value, bool) or not isinstance(value, types):
            if types == (str,):
                details[field] = [_("Expected a string.")]
            else:
                details[field] = [_("Expected a number.") if float in types else _("Expected a whole number.")]
        elif isinstance(value, str) and LONE_SURROGATE.search(value):
            details[field] = [_("Contains invalid Unicode (a lone surrogate such as \\ud800).")]
        else:
            data[field] = value
    return data, details


@api_view("POST")
@limits.limit_generate
def generate(request: HttpRequest) -> HttpResponse:
    try:
        raw = request.body
    except RequestDataTooBig:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return error(
            413,
            "payload_too_large",
            _("The request body is larger than %(limit)s bytes.") % {"limit": limit},
            {"body": [_("Send a smaller JSON object.")]},
        )
    try:
        body = json.loads(raw or b"null")
    except (ValueError, RecursionError):  # RecursionError: nested too deeply
        return error(400, "validation_error", _("The request body is not valid JSON."), {"body": [_("Send a JSON object.")]})
    if not isinstance(body, dict):
        return error(400, "validation_error", _("The request body must be a JSON object."), {"body": [_("Send a JSON object.")]})
    data, details = _json_form_data(body)
    form = GenerateForm(data)
    if details or not form.is_valid():
        details = {**{field: list(messages) for field, messages in form.errors.items()}, **details}
        return error(400, "validation_error", _("Some fields are not valid."), details)
    try:
        task = services.create_task(request.user, form.task_settings())
    except limits.ActiveTaskLimitReached as exc:
        return limits.active_cap_reached(request, exc)
    return JsonResponse(
        {"task_id": str(task.pk), "status": task.status, "created_at": _isoformat(task.created_at)}, status=201
    )


@api_view("GET", "DELETE")
def task_detail(request: HttpRequest, task_id: str) -> HttpResponse:
    if request.method == "DELETE":
        from .api_collections import delete_task

        return delete_task(request, task_id)
    task = owned(Task, request).filter(pk=task_id).prefetch_related("images").first()
    if task is None:
        return error(404, "not_found", _("No such task."))
    return JsonResponse(task_json(task))


@api_view("GET")
def models(request: HttpRequest) -> JsonResponse:
    """The enabled providers and what each model accepts."""
    return JsonResponse(
        {
            "providers": [
                {
                    "name": name,
                    "label": str(provider.label),
                    "is_sketch": provider.is_sketch,
                    "models": [model.as_dict() for model in provider.models()],
                }
                for name, provider in enabled_providers().items()
            ]
        }
    )


def _image_for(request: HttpRequest, image_id: str) -> Image | None:
    return viewable_images(request).filter(pk=image_id).first()


def _serve(request: HttpRequest, image_id: str, *, thumbnail: bool) -> HttpResponse:
    """An image file for its owner only: streamed, handed to nginx, or a signed bucket link."""
    image = _image_for(request, image_id)
    if image is None:
        return error(404, "not_found", _("No such image."))
    etag = f'"{image.pk}-{"t" if thumbnail else "o"}"'
    if request.headers.get("If-None-Match") == etag:
        response: HttpResponse = HttpResponseNotModified()
    else:
        stored = image.thumbnail if thumbnail else image.file
        content_type = "image/webp" if thumbnail else image.mime
        download = not thumbnail and "download" in request.GET
        filename = f"atelier-{image.pk}.png"
        if not _stored_locally(stored.storage):
            return _signed_redirect(stored, download=download, filename=filename)
        if settings.SERVE_MEDIA_WITH == "x-accel":
            if not stored.name or not stored.storage.exists(stored.name):
                return error(404, "not_found", _("The image file is missing."))
            response = HttpResponse(content_type=content_type)
            response["X-Accel-Redirect"] = settings.X_ACCEL_PREFIX.rstrip("/") + "/" + quote(stored.name)
            if download:
                response["Content-Disposition"] = content_disposition_header(True, filename)
        else:
            try:
                handle = stored.open("rb")
            except (FileNotFoundError, ValueError):
                return error(404, "not_found", _("The image file is missing."))
            response = FileResponse(handle, content_type=content_type, as_attachment=download, filename=filename)
    response["ETag"] = etag
    response["Cache-Control"] = IMMUTABLE_CACHE
    response["Last-Modified"] = http_date(image.created_at.timestamp())
    return response


def _stored_locally(storage: Storage) -> bool:
    """Files on this machine's disk (FileSystemStorage); a bucket has no local path."""
    try:
        storage.path("probe")
    except NotImplementedError:
        return False
    return True


def _signed_redirect(stored: FieldFile, *, download: bool, filename: str) -> HttpResponse:
    """302 to a short-lived signed link (S3_PRESIGNED_SECONDS), never cached: it expires."""
    if not stored.name:
        return error(404, "not_found", _("The image file is missing."))
    if download:
        disposition = content_disposition_header(True, filename)
        url = stored.storage.url(stored.name, parameters={"ResponseContentDisposition": disposition})
    else:
        url = stored.storage.url(stored.name)
    response = HttpResponseRedirect(url)
    response["Cache-Control"] = "private, no-store"
    return response


@api_view("GET", page_asset=True)
def image_file(request: HttpRequest, image_id: str) -> HttpResponse:
    return _serve(request, image_id, thumbnail=False)


@api_view("GET", page_asset=True)
def image_thumbnail(request: HttpRequest, image_id: str) -> HttpResponse:
    return _serve(request, image_id, thumbnail=True)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    if request.path.startswith("/api/"):
        return error(403, "csrf_failed", _("Send Django's CSRF token in the X-CSRFToken header."))
    return default_csrf_failure(request, reason)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith("/api/"):
        return error(404, "not_found", _("No such endpoint or object."))
    return render(request, "404.html", status=404)
