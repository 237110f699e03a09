"""History: a person's tasks, newest first, with filters, retry and delete."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from ..models import ACTIVE_STATUSES, Task
from ..ownership import owned
from .http import AuthenticatedHttpRequest

HISTORY_PAGE_SIZE = 25


@require_GET
def history(request: AuthenticatedHttpRequest) -> HttpResponse:
    tasks = owned(Task, request).prefetch_related("images")
    page = Paginator(tasks, HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    any_active = any(task.status in ACTIVE_STATUSES for task in page)
    return render(request, "generator/history.html", {"page": page, "any_active": any_active})


@require_POST
def task_retry(request: AuthenticatedHttpRequest, task_id: str) -> HttpResponse:
    raise Http404("not built yet")


@require_POST
def task_delete(request: AuthenticatedHttpRequest, task_id: str) -> HttpResponse:
    raise Http404("not built yet")
