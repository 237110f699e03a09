"""History: a person's tasks, newest first, with filters, live rows, cancel, retry and delete."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from urllib.parse import urlencode

from django.contrib import messages
from django.db.models import QuerySet
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop, ngettext, pgettext_lazy
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from .. import limits, services
from ..models import ACTIVE_STATUSES, Task
from ..keyset import after, decode_cursor, encode_cursor
from ..ownership import get_owned_or_404, owned
from .http import AuthenticatedHttpRequest, safe_next

HISTORY_PAGE_SIZE = 25
MAX_QUERY_LENGTH = 200
RETRYABLE_STATUSES = (Task.Status.FAILED, Task.Status.CANCELED)
# The status filter: its URL value, its label, and the statuses it shows (None: all).
STATUS_FILTERS: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "all": (pgettext_lazy("tasks", "All"), None),
    "active": (pgettext_lazy("tasks", "Active"), ACTIVE_STATUSES),
    "completed": (pgettext_lazy("tasks", "Completed"), (Task.Status.COMPLETED,)),
    "failed": (pgettext_lazy("tasks", "Failed"), (Task.Status.FAILED,)),
    "canceled": (pgettext_lazy("tasks", "Canceled"), (Task.Status.CANCELED,)),
}
RETRIED = gettext_noop("Retrying: a new task with the same settings was created.")  # translated when shown


@dataclass(frozen=True)
class Filters:
    status: str = "all"
    q: str = ""
    problem: str = ""  # what was wrong with the query string, if anything

    @property
    def active(self) -> bool:
        return self.status != "all" or bool(self.q)

    def query(self, **extra: str) -> str:
        """The query string for these filters (plus `extra`), with a leading "?" or empty."""
        params = {key: value for key, value in (("status", self.status), ("q", self.q)) if value and value != "all"}
        params.update({key: value for key, value in extra.items() if value})
        return f"?{urlencode(params)}" if params else ""


def _filters(request: AuthenticatedHttpRequest) -> Filters:
    status = request.GET.get("status", "all") or "all"
    problem = ""
    if status not in STATUS_FILTERS:
        status, problem = "all", _("Unknown status filter; showing tasks of every status.")
    # NUL cannot be stored or compared in PostgreSQL text; nobody types it on purpose.
    q = " ".join(request.GET.get("q", "").replace("\x00", "").split())
    if len(q) > MAX_QUERY_LENGTH:
        problem = _("Searches are limited to %(max)s characters; yours was shortened.") % {"max": MAX_QUERY_LENGTH}
        q = q[:MAX_QUERY_LENGTH]
    return Filters(status=status, q=q, problem=problem)


def _filtered(request: AuthenticatedHttpRequest, filters: Filters) -> QuerySet[Task]:
    tasks = owned(Task, request)
    statuses = STATUS_FILTERS[filters.status][1]
    if statuses is not None:
        tasks = tasks.filter(status__in=statuses)
    if filters.q:
        tasks = tasks.matching(filters.q)
    return tasks


# --- keyset pages (generator.keyset) -------------------------------------------------


def _page(tasks: QuerySet[Task], token: str) -> tuple[list[Task], str, bool]:
    """One page of tasks after the cursor: (tasks, next token or "", whether the token was bad)."""
    cursor = decode_cursor(token)
    tasks = after(tasks, cursor)
    rows = list(tasks.order_by("-created_at", "-pk").prefetch_related("images")[: HISTORY_PAGE_SIZE + 1])
    page, more = rows[:HISTORY_PAGE_SIZE], len(rows) > HISTORY_PAGE_SIZE
    return page, encode_cursor(page[-1]) if more else "", bool(token) and cursor is None


def _back_to(request: AuthenticatedHttpRequest) -> str:
    """Where a row's forms come back to: the history page the person is looking at."""
    history_path = reverse("generator:history")
    if request.htmx:  # a polled row or an appended page: the page in the address bar
        current = request.htmx.current_url_abs_path
        return current if current and current.startswith(history_path) else history_path
    if "row" not in request.GET:
        return request.get_full_path()
    return history_path


def _safe_next(request: AuthenticatedHttpRequest) -> str:
    """Back to the history page the form came from (its filters kept), and only there."""
    history_path = reverse("generator:history")
    next_url = safe_next(request, history_path)
    return next_url if next_url.startswith(history_path) else history_path


# --- views -----------------------------------------------------------------------------


@require_GET
def history(request: AuthenticatedHttpRequest) -> HttpResponse:
    if "row" in request.GET:
        return _row(request, request.GET["row"])
    context = _page_context(request, _filters(request), request.GET.get("after", ""))
    if request.htmx and request.htmx.target == "history-more":
        response = render(request, "generator/_history_rows.html", context)
    else:
        response = render(request, "generator/history.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _page_context(request: AuthenticatedHttpRequest, filters: Filters, token: str) -> dict:
    tasks, next_token, bad_cursor = _page(_filtered(request, filters), token)
    return {
        "tasks": tasks,
        "filters": filters,
        "status_filters": [(key, label, Filters(key, filters.q).query()) for key, (label, _statuses) in STATUS_FILTERS.items()],
        "next_url": reverse("generator:history") + filters.query(after=next_token) if next_token else "",
        "first_url": reverse("generator:history") + filters.query(),
        "paged": bool(token) and not bad_cursor,
        "bad_cursor": bad_cursor,
        "back_to": _back_to(request),
        "any_active": any(task.is_active for task in tasks),
        # Only asked when the page is empty: "nothing yet" and "nothing matches" differ.
        "has_any_task": bool(tasks) or owned(Task, request).exists(),
    }


def _row(request: AuthenticatedHttpRequest, task_id: str) -> HttpResponse:
    """One row, polled while its task is active (the finished row carries no polling)."""
    try:
        pk = uuid.UUID(task_id)
    except (ValueError, AttributeError):
        raise Http404(_("No such task.")) from None
    task = owned(Task, request).filter(pk=pk).prefetch_related("images").first()
    if task is None:
        raise Http404(_("No such task."))
    response = render(request, "generator/_history_row.html", {"task": task, "back_to": _back_to(request)})
    patch_vary_headers(response, ["HX-Request"])
    return response


@require_POST
def task_retry(request: AuthenticatedHttpRequest, task_id: str) -> HttpResponse:
    task = get_owned_or_404(Task, request, task_id)
    back = _safe_next(request)
    if task.status not in RETRYABLE_STATUSES:
        messages.error(request, _("Only failed or canceled tasks can be retried; this one was left as it is."))
        return _go(request, back)
    try:
        services.retry_task(task)
    except limits.ActiveTaskLimitReached as error:
        return _cap_reached(request, error)
    messages.success(request, _(RETRIED))
    # The new task is the newest: show the first page, keeping a text search (it still matches).
    q = request.POST.get("q", "")
    return _go(request, reverse("generator:history") + Filters(q=q[:MAX_QUERY_LENGTH]).query())


@require_POST
def task_delete(request: AuthenticatedHttpRequest, task_id: str) -> HttpResponse:
    task = get_owned_or_404(Task, request, task_id)
    back = _safe_next(request)
    if request.POST.get("confirm") != "yes":
        images = task.ordered_images
        return render(request, "generator/_history_confirm_delete.html", {"task": task, "images": images, "back_to": back})
    count = len(task.images.all())
    services.delete_tasks(owned(Task, request).filter(pk=task.pk))
    if count:
        text = ngettext(
            "Task deleted with its %(count)s image.", "Task deleted with its %(count)s images.", count
        ) % {"count": count}
    else:
        text = _("Task deleted.")
    if request.htmx:
        return render(request, "generator/_history_deleted.html", {"message": text})
    messages.success(request, text)
    return redirect(back)


def _cap_reached(request: AuthenticatedHttpRequest, error: limits.ActiveTaskLimitReached) -> HttpResponse:
    """htmx gets the shared answer (the message lands in the page's #form-problem box).
    Without JavaScript the shared answer is the create page with a form bound to this
    request's fields (showing a bogus "describe the picture" error), so the history page
    itself is shown again with the message instead: same status, same Retry-After."""
    if request.htmx:
        return limits.active_cap_reached(request, error)
    context = {**_page_context(request, Filters(), ""), "back_to": reverse("generator:history"), "limit_message": str(error)}
    response = render(request, "generator/history.html", context, status=429)
    response["Retry-After"] = str(limits.ACTIVE_CAP_RETRY_SECONDS)
    return response


def _go(request: AuthenticatedHttpRequest, url: str) -> HttpResponse:
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
