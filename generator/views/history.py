"""History: a person's tasks, newest first, with filters and live rows (their actions: views.tasks)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from urllib.parse import urlencode

from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.http import Http404, HttpResponse, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy
from django.views.decorators.http import require_GET

from accounts.http import AuthenticatedHttpRequest

from ..lib.keyset import cut_page
from ..models import ACTIVE_STATUSES, Task, prompt_matches
from ..ownership import owned

HISTORY_PAGE_SIZE = 25
MAX_QUERY_LENGTH = 200
# The status filter: its URL value, its label, and the statuses it shows (None: all).
STATUS_FILTERS: dict[str, tuple[str | Promise, tuple[str, ...] | None]] = {
    "all": (pgettext_lazy("tasks", "All"), None),
    "active": (pgettext_lazy("tasks", "Active"), ACTIVE_STATUSES),
    "completed": (pgettext_lazy("tasks", "Completed"), (Task.Status.COMPLETED,)),
    "failed": (pgettext_lazy("tasks", "Failed"), (Task.Status.FAILED,)),
    "canceled": (pgettext_lazy("tasks", "Canceled"), (Task.Status.CANCELED,)),
}


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
    return filters_from(request.GET)


def filters_from(params: QueryDict) -> Filters:
    """The filters a history address asks for (its query string)."""
    status = params.get("status", "all") or "all"
    problem = ""
    if status not in STATUS_FILTERS:
        status, problem = "all", _("Unknown status filter; showing tasks of every status.")
    # NUL cannot be stored or compared in PostgreSQL text; nobody types it on purpose.
    q = " ".join(params.get("q", "").replace("\x00", "").split())
    if len(q) > MAX_QUERY_LENGTH:
        problem = _("Searches are limited to %(max)s characters; yours was shortened.") % {"max": MAX_QUERY_LENGTH}
        q = q[:MAX_QUERY_LENGTH]
    return Filters(status=status, q=q, problem=problem)


def _rows(request: AuthenticatedHttpRequest) -> QuerySet[Task]:
    """The person's tasks as rows show them: a variant's row names its set, how many it has and
    whether it is the kept one (in the same query: a join and a counted subquery)."""
    siblings = (
        Task.objects.filter(variant_set=OuterRef("variant_set"))
        .order_by()
        .values("variant_set")
        .annotate(n=Count("pk"))
    )
    return (
        owned(Task, request)
        .select_related("variant_set")
        .annotate(variant_set_size=Subquery(siblings.values("n")))
        .prefetch_related("images")
    )


def _filtered(request: AuthenticatedHttpRequest, filters: Filters) -> QuerySet[Task]:
    tasks = _rows(request)
    statuses = STATUS_FILTERS[filters.status][1]
    if statuses is not None:
        tasks = tasks.filter(status__in=statuses)
    if filters.q:
        tasks = tasks.filter(prompt_matches(filters.q))
    return tasks


def _back_to(request: AuthenticatedHttpRequest) -> str:
    """Where a row's forms come back to: the history page the person is looking at."""
    history_path = reverse("generator:history")
    if request.htmx:  # a polled row or an appended page: the page in the address bar
        current = request.htmx.current_url_abs_path
        return current if current and current.startswith(history_path) else history_path
    if "row" not in request.GET:
        return request.get_full_path()
    return history_path


# --- views -----------------------------------------------------------------------------


@require_GET
def history(request: AuthenticatedHttpRequest) -> HttpResponse:
    if "row" in request.GET:
        return _row(request, request.GET["row"])
    context = page_context(request, _filters(request), request.GET.get("after", ""))
    if request.htmx and request.htmx.target == "history-more":
        response = render(request, "generator/_history_rows.html", context)
    else:
        response = render(request, "generator/history.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def page_context(request: AuthenticatedHttpRequest, filters: Filters, token: str) -> dict:
    page = cut_page(_filtered(request, filters), token, HISTORY_PAGE_SIZE)
    tasks = page.rows
    return {
        "tasks": tasks,
        "filters": filters,
        "status_filters": [
            (key, label, Filters(key, filters.q).query()) for key, (label, _statuses) in STATUS_FILTERS.items()
        ],
        "next_url": reverse("generator:history") + filters.query(after=page.next_cursor) if page.next_cursor else "",
        "first_url": reverse("generator:history") + filters.query(),
        "paged": not page.is_first,
        "bad_cursor": page.bad_cursor,
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
    task = _rows(request).filter(pk=pk).first()
    if task is None:
        raise Http404(_("No such task."))
    response = render(request, "generator/_history_row.html", {"task": task, "back_to": _back_to(request)})
    patch_vary_headers(response, ["HX-Request"])
    return response
