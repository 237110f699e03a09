"""Variant sets in the JSON API (v1): make one, read one, keep one of its results. Routed by
generator.api.urls; shapes documented in generator.api.openapi (VariantSet)."""

from __future__ import annotations

import uuid

from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.utils.translation import gettext as _

from accounts.http import AuthenticatedHttpRequest
from generator import limits, services
from generator.api.http import api_view, error, json_form_data, json_object, too_many_requests
from generator.api.serializers import isoformat, task_json
from generator.forms import GenerateForm
from generator.models import Task

from .. import suggest, variants
from ..models import Preset, VariantSet

HELPER_UNAVAILABLE = "prompt_helper_unavailable"


@api_view("POST")
def variant_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The generate body plus `presets` (2 to 6 preset ids) or `rewrites` (2 to 6): made whole
    (201) or refused whole; only the tasks of a set really made count against GENERATE_RATE."""
    body = json_object(request)
    data, details = json_form_data(body)
    chosen_presets, rewrites = _variants_of(request, body, details)
    if chosen_presets:  # each variant gets one of these, not the body's `preset` as well
        data.pop("preset", None)
    form = GenerateForm(data, user=request.user)
    if details or not form.is_valid():
        details = {**{field: list(messages) for field, messages in form.errors.items()}, **details}
        return error(400, "validation_error", _("Some fields are not valid."), details)
    try:
        if rewrites:  # Surprise me asks the prompt helper: it counts against PROMPT_LLM_RATE
            suggest.admit_helper_call(request)
        variant_set = variants.make_variant_set(
            request.user,
            form.task_settings(),
            chosen_presets=chosen_presets,
            rewrites=rewrites,
            explicit=form.explicit_settings(),
            rate=limits.GenerationRate(request),
            source=Task.Source.API,
        )
    except variants.HelperUnavailable as unavailable:
        return error(503, HELPER_UNAVAILABLE, str(unavailable))
    except limits.RateExceeded as refused:  # quotas too (QuotaExceeded: its 429 says when it resets)
        return too_many_requests(refused.exceeded)
    except services.TooManyQueuedTasks as cap:
        return too_many_requests(limits.queued_cap_exceeded(cap))
    return JsonResponse(_set_json(variant_set), status=201)


@api_view("GET")
def variant_detail(request: AuthenticatedHttpRequest, set_id: int) -> HttpResponse:
    found = VariantSet.objects.filter(owner=request.user, pk=set_id).first()
    if found is None:
        return error(404, "not_found", _("No such variant set."))
    return JsonResponse(_set_json(found))


@api_view("POST")
def variant_keep(request: AuthenticatedHttpRequest, set_id: int) -> HttpResponse:
    """`{"task_id"}`: keep that one of the set's results (its images are tagged "kept"; the
    tag moves from the one kept before)."""
    found = VariantSet.objects.filter(owner=request.user, pk=set_id).first()
    if found is None:
        return error(404, "not_found", _("No such variant set."))
    body = json_object(request, example=_('Send {"task_id": "<one of the set\'s task ids>"}.'))
    try:
        task_id = uuid.UUID(body.get("task_id")) if isinstance(body.get("task_id"), str) else None
    except ValueError:
        task_id = None
    if task_id is None:
        message = _("Give the id of one of the set's tasks.")
        return error(400, "validation_error", _("Some fields are not valid."), {"task_id": [message]})
    task = found.tasks.filter(pk=task_id).first()
    if task is None:
        return error(404, "not_found", _("No such task in this variant set."))
    try:
        variants.keep(found, task)
    except variants.NotKeepable:
        return error(409, "not_completed", _("Only a finished variant with pictures can be kept."))
    return JsonResponse(_set_json(found))


def _variants_of(request: AuthenticatedHttpRequest, body: dict, details: dict) -> tuple[list[Preset], int]:
    """The presets or the number of rewrites asked for; what is wrong goes into `details`."""
    size = {"min": VariantSet.MIN_SIZE, "max": VariantSet.MAX_SIZE}
    has_presets, has_rewrites = body.get("presets") is not None, body.get("rewrites") is not None
    if has_presets == has_rewrites:
        details["presets"] = [_("Send either presets (%(min)s to %(max)s preset ids) or rewrites.") % size]
        return [], 0
    if has_rewrites:
        count = body["rewrites"]
        if isinstance(count, bool) or not isinstance(count, int) or not VariantSet.MIN_SIZE <= count <= size["max"]:
            details["rewrites"] = [_("Ask for %(min)s to %(max)s rewrites.") % size]
            return [], 0
        return [], count
    ids = body["presets"]
    if (
        not isinstance(ids, list)
        or not all(isinstance(pk, int) and not isinstance(pk, bool) for pk in ids)
        or len(set(ids)) != len(ids)
        or not VariantSet.MIN_SIZE <= len(ids) <= VariantSet.MAX_SIZE
    ):
        details["presets"] = [_("Give %(min)s to %(max)s different preset ids.") % size]
        return [], 0
    # An id past what the database's key column holds names no preset (SQLite would raise).
    low, high = connection.ops.integer_field_range(Preset._meta.pk.get_internal_type())
    storable = [pk for pk in ids if low <= pk <= high]
    found = {preset.pk: preset for preset in Preset.objects.usable_by(request.user).filter(pk__in=storable)}
    missing = [pk for pk in ids if pk not in found]
    if missing:
        details["presets"] = [_("No such preset: %(ids)s.") % {"ids": ", ".join(map(str, missing))}]
        return [], 0
    return [found[pk] for pk in ids], 0


def _set_json(variant_set: VariantSet) -> dict:
    tasks = variant_set.tasks.order_by("created_at", "pk").prefetch_related("images")
    return {
        "variant_set_id": variant_set.pk,
        "mode": variant_set.mode,
        "prompt": variant_set.prompt,
        "created_at": isoformat(variant_set.created_at),
        "kept_task_id": str(variant_set.kept_id) if variant_set.kept_id else None,
        "tasks": [task_json(task) for task in tasks],
    }
