"""The API's lists and housekeeping endpoints: tasks, history, images, tags, system info.

Lists are newest first with keyset pages: `{"results": [...], "next": <cursor or null>}`;
pass the cursor back as `?cursor=` for the next page.
"""

from __future__ import annotations

import copy
import json

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django_ratelimit.core import get_usage

from . import limits, services, tags
from .api import api_view, error, image_json, task_json
from .keyset import after, decode_cursor, encode_cursor
from .models import ACTIVE_STATUSES, Image, Tag, Task
from .ownership import owned
from .providers import enabled_providers

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
FINISHED_STATUSES = (Task.Status.COMPLETED, Task.Status.FAILED, Task.Status.CANCELED)


class BadQuery(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


def _limit(request: HttpRequest) -> int:
    raw = request.GET.get("limit", str(DEFAULT_LIMIT))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadQuery("limit", _("Give a whole number from 1 to %(max)s.") % {"max": MAX_LIMIT})
    return int(raw)


def _page(rows: QuerySet, request: HttpRequest) -> tuple[list, str | None]:
    token = request.GET.get("cursor", "")
    cursor = decode_cursor(token)
    if token and cursor is None:
        raise BadQuery("cursor", _("This cursor is not one Atelier gave out; start again without it."))
    size = _limit(request)
    found = list(after(rows.order_by("-created_at", "-pk"), cursor)[: size + 1])
    page = found[:size]
    return page, encode_cursor(page[-1]) if len(found) > size else None


def _bad_query(exc: BadQuery) -> JsonResponse:
    return error(400, "validation_error", _("Some query parameters are not valid."), {exc.field: [exc.message]})


def _task_list(request: HttpRequest, tasks: QuerySet) -> JsonResponse:
    status = request.GET.get("status", "")
    try:
        if status:
            if status not in Task.Status.values:
                raise BadQuery("status", _("Use one of: %(values)s.") % {"values": ", ".join(Task.Status.values)})
            tasks = tasks.filter(status=status)
        query = request.GET.get("q", "").strip()
        if query:
            tasks = tasks.matching(query)
        page, next_cursor = _page(tasks.prefetch_related("images"), request)
    except BadQuery as exc:
        return _bad_query(exc)
    return JsonResponse({"results": [task_json(task) for task in page], "next": next_cursor})


@api_view("GET")
def task_list(request: HttpRequest) -> JsonResponse:
    return _task_list(request, owned(Task, request))


@api_view("GET")
def history_list(request: HttpRequest) -> JsonResponse:
    return _task_list(request, owned(Task, request).filter(status__in=FINISHED_STATUSES))


def delete_task(request: HttpRequest, task_id: str, *, finished_only: bool = False) -> HttpResponse:
    """Cancel it if it is still waiting, then delete it with its images and files."""
    tasks = owned(Task, request).filter(pk=task_id)
    if finished_only:
        tasks = tasks.filter(status__in=FINISHED_STATUSES)
    task = tasks.first()
    if task is None:
        return error(404, "not_found", _("No such task."))
    task.cancel()
    services.delete_tasks(Task.objects.filter(pk=task.pk))
    return HttpResponse(status=204)


@api_view("DELETE")
def history_delete(request: HttpRequest, task_id: str) -> HttpResponse:
    return delete_task(request, task_id, finished_only=True)


@api_view("GET")
def image_list(request: HttpRequest) -> JsonResponse:
    images = owned(Image, request).select_related("task").prefetch_related("tags")
    tag_name = request.GET.get("tag", "").strip()
    if tag_name:
        images = images.filter(tags__owner=request.user, tags__name__iexact=tag_name)
    favorite = request.GET.get("favorite", "")
    if favorite:
        if favorite not in ("true", "false", "1", "0"):
            return _bad_query(BadQuery("favorite", _("Use true or false.")))
        images = images.filter(is_favorite=favorite in ("true", "1"))
    try:
        page, next_cursor = _page(images, request)
    except BadQuery as exc:
        return _bad_query(exc)
    return JsonResponse({"results": [image_json(image, with_tags=True) for image in page], "next": next_cursor})


@api_view("POST")
def image_tag_add(request: HttpRequest, image_id: str) -> JsonResponse:
    image = owned(Image, request).filter(pk=image_id).first()
    if image is None:
        return error(404, "not_found", _("No such image."))
    try:
        body = json.loads(request.body or b"null")
    except (ValueError, RecursionError):
        body = None
    if not isinstance(body, dict):
        return error(400, "validation_error", _("Send a JSON object like {\"name\": \"sunsets\"}."), {"body": [_("Send a JSON object.")]})
    try:
        tag = tags.tag_for(request.user, body.get("name"))
    except ValidationError as exc:
        return error(400, "validation_error", _("The tag name is not valid."), {"name": exc.messages})
    image.tags.add(tag)
    return JsonResponse({"image_id": str(image.pk), "tags": sorted(t.name for t in image.tags.all())}, status=201)


@api_view("DELETE")
def image_tag_remove(request: HttpRequest, image_id: str, name: str) -> HttpResponse:
    image = owned(Image, request).filter(pk=image_id).first()
    if image is None:
        return error(404, "not_found", _("No such image."))
    tag = Tag.objects.filter(owner=request.user, name__iexact=name.strip(), images=image).first()
    if tag is None:
        return error(404, "not_found", _("This image has no such tag."))
    image.tags.remove(tag)
    return HttpResponse(status=204)


@api_view("GET")
def system_info(request: HttpRequest) -> JsonResponse:
    # The counter is keyed on the submitting method: read it as a POST would, without counting.
    as_submission = copy.copy(request)
    as_submission.method = "POST"
    usage = get_usage(
        as_submission, group=limits.GENERATE_GROUP, key="user", rate=limits.generate_rate, method="POST", increment=False
    ) or {}
    api_usage = get_usage(request, group=limits.API_GROUP, key="user", rate=limits.api_rate, increment=False) or {}
    active = owned(Task, request).filter(status__in=ACTIVE_STATUSES).count()
    return JsonResponse(
        {
            "version": settings.ATELIER_VERSION,
            "providers": [
                {"name": name, "label": str(provider.label), "is_sketch": provider.is_sketch}
                for name, provider in enabled_providers().items()
            ],
            "limits": {
                "active_tasks": {"used": active, "max": settings.MAX_ACTIVE_TASKS_PER_USER},
                "generate_rate": {
                    "rate": settings.GENERATE_RATE,
                    "used": usage.get("count", 0),
                    "resets_in": usage.get("time_left"),
                },
                "api_rate": {
                    "rate": settings.API_RATE,
                    "used": api_usage.get("count", 0),
                    "resets_in": api_usage.get("time_left"),
                },
            },
        }
    )


def health(request: HttpRequest) -> JsonResponse:
    """Public liveness for API clients (no database access)."""
    return JsonResponse({"status": "ok", "version": settings.ATELIER_VERSION})
