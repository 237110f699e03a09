"""One task: its page, the card the create page polls, its live preview, and cancel (Stop),
retry, rerun and delete.

The rules live in the model and the services (Task.cancel, services.retry_task,
services.delete_tasks); these views only ask and answer. Retry and delete come from the
history page and go back to it.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from django.contrib import messages
from django.db.models import prefetch_related_objects
from django.http import Http404, HttpResponse, QueryDict
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop, ngettext
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from accounts.http import AuthenticatedHttpRequest

from .. import limits, progress, services
from ..forms import GenerateForm, task_fields
from ..lib.fragments import placeholder, render_kept
from ..models import Task
from ..ownership import get_owned_or_404, owned
from .errors import too_many_requests
from .history import MAX_QUERY_LENGTH, Filters, filters_from, page_context
from .http import safe_next

RETRIED = gettext_noop("Retrying: a new task with the same settings was created.")  # translated when shown
RERUN = gettext_noop("Running again: a new task with the same settings was created.")


@require_GET
def task_detail(request: AuthenticatedHttpRequest, task_id: str) -> HttpResponse:
    task = get_owned_or_404(Task, request, task_id)
    if task.is_finished:
        prefetch_related_objects([task], "images")  # one query, whatever the page asks of them
    return render(request, "generator/task_detail.html", {"task": task, "any_active": task.is_active})


@require_GET
def task_card(request: AuthenticatedHttpRequest, task_id: str) -> HttpResponse:
    """The card the create page polls every second while the task runs."""
    task = get_owned_or_404(Task, request, task_id)
    if task.is_finished:
        prefetch_related_objects([task], "images")  # the thumbnails and the seed label share them
        return render(request, CARD_TEMPLATE, {"task": task})
    return HttpResponse(_active_card(request, task))


CARD_TEMPLATE = "generator/_task_card.html"
# Task columns a card never shows, which change while it runs (the worker's heartbeat).
_UNSHOWN_COLUMNS = {"heartbeat_at", "held_by", "claimed_at", "enqueued_at"}
_CARD_COLUMNS = [field.attname for field in Task._meta.concrete_fields if field.attname not in _UNSHOWN_COLUMNS]
# Where a kept card takes this request's values.
_LIVE = {name: placeholder(f"card-{name}") for name in ("elapsed_seconds", "elapsed_text", "next")}
_CSRF = placeholder("card-csrf")


def _active_card(request: AuthenticatedHttpRequest, task: Task) -> SafeString:
    """A running task's card, rendered once for what it shows: a task waiting for a worker,
    backing off or queued at the vendor is polled every second unchanged. The elapsed time,
    the page to come back to and the CSRF token are filled in per request."""
    shown = (
        *(getattr(task, column) for column in _CARD_COLUMNS),
        task.has_preview,
        task.estimated_time,
        timezone.get_current_timezone_name(),
    )
    placeholders = {
        _LIVE["elapsed_seconds"]: str(task.elapsed_seconds),
        _LIVE["elapsed_text"]: task.elapsed_text,
        _LIVE["next"]: request.get_full_path(),
        _CSRF: get_token(request),
    }
    context = {"task": task, "live": _LIVE, "csrf_token": _CSRF}
    return render_kept(CARD_TEMPLATE, shown, context, placeholders=placeholders)


@require_GET
def task_preview(request: AuthenticatedHttpRequest, task_id: str) -> HttpResponse:
    """The picture so far of the owner's generating task (generator.progress), or 404: one
    query (the task) besides the session; never cached anywhere, it changes every second."""
    task = owned(Task, request).filter(pk=task_id).only("pk", "status").first()
    data = progress.preview(task.pk) if task is not None and task.is_generating else None
    if data is None:
        raise Http404
    response = HttpResponse(data, content_type="image/webp")
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_POST
def task_cancel(request: AuthenticatedHttpRequest, task_id: str) -> HttpResponse:
    task = get_owned_or_404(Task, request, task_id)
    services.cancel_task(task)
    if request.htmx:
        return render(request, CARD_TEMPLATE, {"task": task})
    return redirect(safe_next(request, task.get_absolute_url()))


@require_POST
def task_retry(request: AuthenticatedHttpRequest, task_id: str) -> HttpResponse:
    task = get_owned_or_404(Task, request, task_id)

    # Over a limit, the history page comes again (its first page) with the message.
    def history_page() -> dict:
        return {**page_context(request, Filters(), ""), "back_to": reverse("generator:history")}

    # A retry makes a new task: it counts against GENERATE_RATE like every other way of making one.
    try:
        services.retry_task(task, rate=limits.GenerationRate(request))
    except limits.RateExceeded as refused:
        return too_many_requests(request, refused.exceeded, template="generator/history.html", context=history_page)
    except services.TaskNotRetryable:
        messages.error(request, _("Only failed or canceled tasks can be retried; this one was left as it is."))
        return _go(request, _history_next(request))
    except services.TooManyQueuedTasks as cap:
        exceeded = limits.queued_cap_exceeded(cap)
        return too_many_requests(request, exceeded, template="generator/history.html", context=history_page)
    messages.success(request, _(RETRIED))
    # The new task is the newest: show the first page, keeping a text search (it still matches).
    q = request.POST.get("q", "")
    return _go(request, reverse("generator:history") + Filters(q=q[:MAX_QUERY_LENGTH]).query())


@require_POST
def task_rerun(request: AuthenticatedHttpRequest, task_id: str) -> HttpResponse:
    """A new task with this one's settings, checked like any submission (the model may be
    gone since): a fixed seed stays, a random seed is random again. From the history it goes
    back to the history; from the task page, to the new task."""
    task = get_owned_or_404(Task, request, task_id)
    from_history = _history_next(request) if request.POST.get("next") else ""
    form = GenerateForm(task_fields(task))
    if not form.is_valid():
        problems = " ".join(str(message) for messages_ in form.errors.values() for message in messages_)
        messages.error(
            request,
            _("This task's settings are not accepted any more: %(problems)s Change them here, then generate.")
            % {"problems": problems},
        )
        return _go(request, f"{reverse('generator:create')}?{urlencode({'from': task.pk})}")
    try:
        new_task = services.create_task(request.user, form.task_settings(), rate=limits.GenerationRate(request))
    except (limits.RateExceeded, services.TooManyQueuedTasks) as refusal:
        exceeded = refusal.exceeded if isinstance(refusal, limits.RateExceeded) else limits.queued_cap_exceeded(refusal)
        if from_history:
            return too_many_requests(
                request,
                exceeded,
                template="generator/history.html",
                context=lambda: {**page_context(request, Filters(), ""), "back_to": reverse("generator:history")},
            )
        messages.error(request, exceeded.message)
        return _go(request, task.get_absolute_url())
    messages.success(request, _(RERUN))
    if from_history:
        q = request.POST.get("q", "")
        return _go(request, reverse("generator:history") + Filters(q=q[:MAX_QUERY_LENGTH]).query())
    return _go(request, new_task.get_absolute_url())


@require_POST
def task_delete(request: AuthenticatedHttpRequest, task_id: str) -> HttpResponse:
    task = get_owned_or_404(Task, request, task_id)
    back = _history_next(request)
    if request.POST.get("confirm") != "yes":
        images = task.ordered_images
        return render(
            request, "generator/_history_confirm_delete.html", {"task": task, "images": images, "back_to": back}
        )
    count = len(task.images.all())
    services.delete_tasks(owned(Task, request).filter(pk=task.pk))
    if count:
        text = ngettext("Task deleted with its %(count)s image.", "Task deleted with its %(count)s images.", count) % {
            "count": count
        }
    else:
        text = _("Task deleted.")
    if request.htmx:
        context = {"message": text, **_emptied_page(request, back)}
        return render(request, "generator/_history_deleted.html", context)
    messages.success(request, text)
    return redirect(back)


def _emptied_page(request: AuthenticatedHttpRequest, back: str) -> dict:
    """When the delete removed the last task the history page (its filters and page) shows,
    that page's list as it is now, to replace the emptied table: "No tasks match …"."""
    query = QueryDict(urlsplit(back).query)
    context = page_context(request, filters_from(query), query.get("after", ""))
    return {**context, "oob": True} if not context["tasks"] else {}


def _history_next(request: AuthenticatedHttpRequest) -> str:
    """Back to the history page the form came from (its filters kept), and only there."""
    history_path = reverse("generator:history")
    next_url = safe_next(request, history_path)
    return next_url if next_url.startswith(history_path) else history_path


def _go(request: AuthenticatedHttpRequest, url: str) -> HttpResponse:
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
