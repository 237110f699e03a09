"""Variant sets on the pages: "Make variants" on the create form, the set's page (the answer
without JavaScript) and "Keep this one". Thin: prompts.variants does the work."""

from __future__ import annotations

from django.http import Http404, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import reswap, retarget

from accounts.http import AuthenticatedHttpRequest
from generator import limits, services
from generator.forms import GenerateForm
from generator.models import Task
from generator.views.create import form_context, page_context
from generator.views.errors import too_many_requests

from .. import suggest, variants
from ..models import VariantSet
from ..variant_forms import VariantsForm


@require_POST
def variant_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The create form sent with "Make variants": its fields are the base settings. Made whole
    or refused whole; a refusal shows by the button (in place with htmx, else the page again)."""
    chosen = VariantsForm(request.POST, user=request.user)
    form = GenerateForm(_base_data(request.POST), user=request.user)
    if not form.is_valid():
        if request.htmx:
            response = render(request, "generator/_generate_form.html", {**form_context(form), "variants_form": chosen})
            return reswap(retarget(response, "#generate-form"), "outerHTML")
        return render(
            request, "generator/create.html", {**page_context(request, form), "variants_form": chosen}, status=400
        )
    if not chosen.is_valid():
        return _problem(request, form, chosen, chosen.problem(), status=400)
    try:
        if chosen.rewrites:  # Surprise me asks the prompt helper: it counts against PROMPT_LLM_RATE
            suggest.admit_helper_call(request)
        variant_set = variants.make_variant_set(
            request.user,
            form.task_settings(),
            chosen_presets=chosen.chosen_presets,
            rewrites=chosen.rewrites,
            explicit=form.explicit_settings(),
            rate=limits.GenerationRate(request),
        )
    except variants.HelperUnavailable as unavailable:
        return _problem(request, form, chosen, str(unavailable), status=503)
    except limits.RateExceeded as refused:  # the rate, and quotas (QuotaExceeded)
        return _refused(request, form, chosen, refused.exceeded)
    except services.TooManyQueuedTasks as cap:
        return _refused(request, form, chosen, limits.queued_cap_exceeded(cap))
    if request.htmx:
        context = {"variant_set": variant_set, "tasks": _tasks_of(variant_set)}
        return render(request, "prompts/_variant_set_created.html", context, status=201)
    return redirect(variant_set)


def _base_data(data: QueryDict) -> QueryDict:
    """The form's fields as the set's base settings: with presets chosen for the set, the
    picker's own preset is left out (each variant gets one preset, not two)."""
    if data.get("variant_mode") != VariantSet.Mode.PRESETS:
        return data
    base = data.copy()
    base.pop("preset", None)
    return base


@require_GET
def variant_set(request: AuthenticatedHttpRequest, set_id: int) -> HttpResponse:
    """The set's tasks side by side, each finished one with "Keep this one"."""
    found = _owned_set(request, set_id)
    tasks = _tasks_of(found)
    context = {"variant_set": found, "tasks": tasks, "any_active": any(task.is_active for task in tasks)}
    return render(request, "prompts/variant_set.html", context)


@require_POST
def variant_keep(request: AuthenticatedHttpRequest, set_id: int, task_id: str) -> HttpResponse:
    """Keep one of the set's results: the set remembers it and its images are tagged "kept"
    (the tag moves from the one kept before)."""
    found = _owned_set(request, set_id)
    task = found.tasks.filter(pk=task_id).first()
    if task is None:
        raise Http404(_("No such task in this variant set."))
    try:
        variants.keep(found, task)
    except variants.NotKeepable:
        message = _("Only a finished variant with pictures can be kept.")
        tasks = _tasks_of(found)
        context = {"variant_set": found, "tasks": tasks, "any_active": True, "problem": message}
        return render(request, "prompts/variant_set.html", context, status=409)
    if request.htmx:
        return render(request, "prompts/_kept.html", {"variant_set": found, "tasks": _tasks_of(found)})
    return redirect(found)


# --- helpers -----------------------------------------------------------------------------------


def _owned_set(request: AuthenticatedHttpRequest, set_id: int) -> VariantSet:
    return get_object_or_404(VariantSet.objects.filter(owner=request.user), pk=set_id)


def _tasks_of(variant_set: VariantSet) -> list[Task]:
    """The set's tasks in the order they were made (each knows its set: no query per card)."""
    return list(variant_set.tasks.order_by("created_at", "pk").prefetch_related("images"))


def _problem(
    request: AuthenticatedHttpRequest, form: GenerateForm, chosen: VariantsForm, message: str, *, status: int
) -> HttpResponse:
    """A refusal that is not a limit (too few or many variants, the helper unavailable): by the
    button; with htmx the form comes again with it (htmx swaps no 4xx or 5xx)."""
    if request.htmx:
        context = {**form_context(form), "variants_form": chosen, "limit_message": message}
        response = render(request, "generator/_generate_form.html", context)
        return reswap(retarget(response, "#generate-form"), "outerHTML")
    context = {**page_context(request, form), "variants_form": chosen, "limit_message": message}
    return render(request, "generator/create.html", context, status=status)


def _refused(
    request: AuthenticatedHttpRequest, form: GenerateForm, chosen: VariantsForm, exceeded: limits.Exceeded
) -> HttpResponse:
    return too_many_requests(
        request,
        exceeded,
        template="generator/create.html",
        context=lambda: {**page_context(request, form), "variants_form": chosen},
    )
