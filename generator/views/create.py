"""The create page, and the task card it polls, the task page and cancel. Thin by design."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import reswap, retarget

from .. import limits, services
from ..ownership import get_owned_or_404, owned
from ..forms import GenerateForm, model_choices
from ..models import Task
from .http import AuthenticatedHttpRequest, safe_next

RECENT_TASKS_ON_CREATE = 8


def _recent_tasks(request: AuthenticatedHttpRequest):
    return owned(Task, request).prefetch_related("images")[:RECENT_TASKS_ON_CREATE]


@require_http_methods(["GET", "POST"])
@limits.limit_generate
def create(request: AuthenticatedHttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = GenerateForm(request.POST)
        if form.is_valid():
            try:
                task = services.create_task(request.user, form.task_settings())
            except limits.ActiveTaskLimitReached as error:
                return limits.active_cap_reached(request, error)
            if request.htmx:
                return render(request, "generator/_task_card.html", {"task": task}, status=201)
            return redirect("generator:create")
        if request.htmx:
            response = render(request, "generator/_generate_form.html", _form_context(form))
            return reswap(retarget(response, "#generate-form"), "outerHTML")
    else:
        form = GenerateForm(initial=_initial_from_query(request))
    return render(request, "generator/create.html", create_page_context(request, form), status=400 if form.errors else 200)


def create_page_context(request: HttpRequest, form: GenerateForm | None = None) -> dict:
    if form is None:  # a refused submission from this page keeps what the person typed
        submitted = request.method == "POST" and request.path == reverse("generator:create")
        form = GenerateForm(request.POST) if submitted else GenerateForm()
    tasks = _recent_tasks(request)
    return {**_form_context(form), "tasks": tasks, "any_active": any(task.is_active for task in tasks)}


def _form_context(form: GenerateForm) -> dict:
    return {"form": form, "model_choices": model_choices()}


def _initial_from_query(request: HttpRequest) -> dict:
    keys = ("prompt", "negative_prompt", "model", "size", "num_images", "seed", "steps", "scale")
    initial = {key: request.GET[key] for key in keys if request.GET.get(key)}
    if "seed" in initial:
        initial["random_seed"] = False
    return initial


@require_GET
def task_card(request: AuthenticatedHttpRequest, task_id: str) -> HttpResponse:
    task = get_owned_or_404(Task, request, task_id)
    return render(request, "generator/_task_card.html", {"task": task})


@require_GET
def task_detail(request: AuthenticatedHttpRequest, task_id: str) -> HttpResponse:
    task = get_owned_or_404(Task, request, task_id)
    return render(request, "generator/task_detail.html", {"task": task, "any_active": task.is_active})


@require_POST
def task_cancel(request: AuthenticatedHttpRequest, task_id: str) -> HttpResponse:
    task = get_owned_or_404(Task, request, task_id)
    task.cancel()
    if request.htmx:
        return render(request, "generator/_task_card.html", {"task": task})
    return redirect(safe_next(request, task.get_absolute_url()))
