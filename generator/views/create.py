"""The create page: the generate form and the person's latest task cards. Thin by design."""

from __future__ import annotations

import hashlib
import json
import re
import uuid

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods
from django_htmx.http import reswap, retarget

from accounts.http import AuthenticatedHttpRequest
from sharing.models import Publication
from sharing.publishing import usable

from .. import limits, services
from ..forms import GenerateForm, model_choices, reuse_fields, task_fields
from ..models import Image, Task
from ..ownership import owned
from .errors import too_many_requests

RECENT_TASKS_ON_CREATE = 8
PAGE_TOKEN = re.compile(r"[0-9a-f]{32}")
FORM_FIELDS_FROM_QUERY = (
    "prompt",
    "negative_prompt",
    "model",
    "size",
    "width",
    "height",
    "num_images",
    "seed",
    "steps",
    "scale",
    "preset",  # "Use" on the Presets page
)


@require_http_methods(["GET", "POST"])
def create(request: AuthenticatedHttpRequest) -> HttpResponse:
    if request.method != "POST":
        publication = _used_publication(request)
        if publication is not None:
            initial = {**reuse_fields(publication.image), "from_publication": publication.pk}
            form = GenerateForm(initial=initial, user=request.user)
        else:
            form = GenerateForm(initial=_initial_from_query(request), user=request.user)
        context = {**page_context(request, form), "settings_from": publication}
        return render(request, "generator/create.html", context)
    form = GenerateForm(request.POST, user=request.user)
    # Only a task really made counts against GENERATE_RATE: an invalid form or a refusal does not.
    if not form.is_valid():
        if request.htmx:
            response = render(request, "generator/_generate_form.html", form_context(form))
            return reswap(retarget(response, "#generate-form"), "outerHTML")
        return render(request, "generator/create.html", page_context(request, form), status=400)
    try:
        task, created = _create_once(request, form)
    except limits.RateExceeded as refused:
        return _refused(request, form, refused.exceeded)
    except services.TooManyQueuedTasks as cap:
        return _refused(request, form, limits.queued_cap_exceeded(cap))
    if request.htmx:
        # A fresh one-time token for the form's next submission comes along (out of band).
        # A task made with the settings of a publication says so; the next one from this form
        # does not: the form's field and note go (out of band).
        context = {
            "task": task,
            "submission": _new_token(),
            "cleared_from_publication": bool(request.POST.get("from_publication")),
        }
        response = render(request, "generator/_task_created.html", context, status=201)
        # The same submission again (sent twice): its task is already on the page.
        return response if created else reswap(response, "none")
    return redirect("generator:create")


def _create_once(request: AuthenticatedHttpRequest, form: GenerateForm) -> tuple[Task, bool]:
    """The task for this submission. Each form carries a one-time token (`submission`): the
    same form posted again with the same fields (a double click that got through, a browser
    resending) answers with the task it made. A token seen with other fields is a new
    submission (a form kept on the page): it makes a task as usual."""
    rate = limits.GenerationRate(request)
    token = request.POST.get("submission", "")
    if not PAGE_TOKEN.fullmatch(token):
        return services.create_task(request.user, form.task_settings(), rate=rate), True
    fields = sorted((key, request.POST.getlist(key)) for key in request.POST if key != "csrfmiddlewaretoken")
    fingerprint = hashlib.sha256(json.dumps(fields).encode()).hexdigest()
    once = services.Idempotency(key=f"page:{token}", fingerprint=fingerprint)
    try:
        return services.create_task_once(request.user, form.task_settings(), rate=rate, idempotency=once)
    except services.IdempotencyKeyReused:
        return services.create_task(request.user, form.task_settings(), rate=rate), True


def _new_token() -> str:
    return uuid.uuid4().hex


def _refused(request: AuthenticatedHttpRequest, form: GenerateForm, exceeded: limits.Exceeded) -> HttpResponse:
    return too_many_requests(
        request, exceeded, template="generator/create.html", context=lambda: page_context(request, form)
    )


def page_context(request: HttpRequest, form: GenerateForm) -> dict:
    # A variant's card says whether it is its set's kept one (prompts/_keep.html).
    tasks = owned(Task, request).select_related("variant_set").prefetch_related("images")[:RECENT_TASKS_ON_CREATE]
    return {**form_context(form), "tasks": tasks, "any_active": any(task.is_active for task in tasks)}


def form_context(form: GenerateForm) -> dict:
    return {"form": form, "model_choices": model_choices(), "submission": _new_token()}


def _initial_from_query(request: AuthenticatedHttpRequest) -> dict:
    """The form as "Reuse settings" fills it (?from=<task id> or ?reuse=<image id>, the
    person's own; anyone else's is ignored), or from single fields in the address
    (?prompt=…&seed=…; a seed given means a fixed seed)."""
    reused = _reused_image(request)
    if reused is not None:
        return reuse_fields(reused)
    task = _reused_task(request)
    if task is not None:
        return task_fields(task)
    initial: dict[str, object] = {key: request.GET[key] for key in FORM_FIELDS_FROM_QUERY if request.GET.get(key)}
    if "seed" in initial:
        initial["random_seed"] = False
    return initial


def _reused_image(request: AuthenticatedHttpRequest) -> Image | None:
    try:
        image_id = uuid.UUID(request.GET.get("reuse", ""))
    except ValueError:
        return None
    return owned(Image, request).select_related("task").filter(pk=image_id).first()


def _used_publication(request: AuthenticatedHttpRequest) -> Publication | None:
    """?publication=<id> ("Use these settings" on Explore): anyone's published image, while it
    is on Explore with its prompt shown; otherwise the form starts empty."""
    try:
        publication_id = uuid.UUID(request.GET.get("publication", ""))
    except ValueError:
        return None
    return usable().select_related("image__task", "owner").filter(pk=publication_id).first()


def _reused_task(request: AuthenticatedHttpRequest) -> Task | None:
    try:
        task_id = uuid.UUID(request.GET.get("from", ""))
    except ValueError:
        return None
    return owned(Task, request).filter(pk=task_id).first()
