"""The JSON API (v1). Paths and shapes are a public contract: change them only additively.

Lists are newest first with keyset pages: `{"results": [...], "next": <cursor or null>}`;
pass the cursor back as `?cursor=` for the next page. The image files under /api/v1/images/
are served by generator.views.files, like every <img> on the pages.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from datetime import UTC

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpResponse, JsonResponse
from django.utils.translation import gettext as _

from accounts.http import AuthenticatedHttpRequest
from prompts.suggest import optimized
from usage import quotas

from .. import limits, services, tags
from ..catalogue import offered_models
from ..forms import GenerateForm
from ..lib.prepared import PreparedQuery
from ..models import (
    CLAIMABLE_STATUSES,
    FINISHED_STATUSES,
    IDEMPOTENCY_KEY_MAX_LENGTH,
    Image,
    Tag,
    Task,
    prompt_matches,
)
from ..ownership import find_owned, owned
from ..providers import Provider, enabled_providers
from ..scheduler import limits as provider_limits
from .http import (
    BadRequest,
    api_view,
    bad_query,
    error,
    json_form_data,
    json_object,
    list_page,
    text_query,
    too_many_requests,
)
from .serializers import image_json, isoformat, task_json

IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]+")


# --- generating -------------------------------------------------------------------------------


@api_view("POST")
def generate(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Only a task really made counts against GENERATE_RATE: an invalid body, a refusal or a
    replayed Idempotency-Key does not (services.create_task_once checks and counts)."""
    body = json_object(request)
    idempotency = _idempotency(request, body)
    try:
        if idempotency is not None and (task := services.replayed_task(request.user, idempotency)) is not None:
            return _created(task, replayed=True)
        data, details = json_form_data(body)
        optimize, english = _prompt_options(body, details)
        form = GenerateForm(data, user=request.user)
        if details or not form.is_valid():
            details = {**{field: list(messages) for field, messages in form.errors.items()}, **details}
            return error(400, "validation_error", _("Some fields are not valid."), details)
        task_settings, note = form.task_settings(), None
        if optimize:  # before the task is made, outside its lock: the LLM may take a while
            task_settings, note = _optimized(request, task_settings, english=english)
        task, created = services.create_task_once(
            request.user,
            task_settings,
            rate=limits.GenerationRate(request),
            idempotency=idempotency,
            source=Task.Source.API,
        )
    except services.IdempotencyKeyReused:
        return error(
            422,
            "idempotency_key_reused",
            _(
                "This Idempotency-Key was used for a different request in the last 24 hours. "
                "Send a new key with a new request."
            ),
        )
    except limits.RateExceeded as refused:  # quotas too (QuotaExceeded: its 429 says when it resets)
        return too_many_requests(refused.exceeded)
    except services.TooManyQueuedTasks as cap:
        return too_many_requests(limits.queued_cap_exceeded(cap))
    return _created(task, replayed=not created, prompt_note=note, optimize=optimize)


def _prompt_options(body: dict, details: dict) -> tuple[bool, bool]:
    """`optimize_prompt` (a boolean) and `prompt_language` ("en" asks for English)."""
    optimize, language = body.get("optimize_prompt"), body.get("prompt_language")
    if optimize is not None and not isinstance(optimize, bool):
        details["optimize_prompt"] = [_("Expected true or false.")]
    if language is not None and language != "en":
        details["prompt_language"] = [
            _('Use "en" to have the prompt helper write English, or leave it out to keep the prompt\'s language.')
        ]
    return bool(optimize), language == "en"


def _optimized(
    request: AuthenticatedHttpRequest, task_settings: services.TaskSettings, *, english: bool
) -> tuple[services.TaskSettings, str | None]:
    """The settings with the prompt helper's prompt and the original kept, or as they were
    and why (the task is made either way)."""
    suggestion = optimized(request, task_settings.prompt, english=english)
    if suggestion.fell_back or suggestion.prompt == task_settings.prompt:
        return task_settings, suggestion.fallback_reason or None
    typed = task_settings.original_prompt or task_settings.prompt  # a preset may have styled it already
    return dataclasses.replace(task_settings, prompt=suggestion.prompt, original_prompt=typed), None


def _created(task: Task, *, replayed: bool, prompt_note: str | None = None, optimize: bool = False) -> JsonResponse:
    """201 with the task; a replayed Idempotency-Key gets the same answer (its task as it is
    now) and says so in Idempotent-Replayed. With `optimize_prompt`: the prompt used, the
    original and `prompt_note` (why the original was used, or null)."""
    body = {
        "task_id": str(task.pk),
        "status": task.status,
        "created_at": isoformat(task.created_at),
        "estimated_time": task.estimated_time,
    }
    if optimize:
        body |= {"prompt": task.prompt, "original_prompt": task.original_prompt or None, "prompt_note": prompt_note}
    response = JsonResponse(body, status=201)
    if replayed:
        response["Idempotent-Replayed"] = "true"
    return response


def _idempotency(request: AuthenticatedHttpRequest, body: dict) -> services.Idempotency | None:
    """The Idempotency-Key header (1 to 255 printable ASCII characters; a quoted
    structured-field string is unquoted) with the fingerprint of the body, or None without
    one. BadRequest for a malformed key."""
    raw = request.headers.get("Idempotency-Key")
    if raw is None:
        return None
    key = raw.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX_LENGTH or not IDEMPOTENCY_KEY.fullmatch(key):
        raise BadRequest(
            error(
                400,
                "validation_error",
                _("The Idempotency-Key header is not valid."),
                {
                    "Idempotency-Key": [
                        _("Use 1 to %(max)s printable ASCII characters, such as a UUID.")
                        % {"max": IDEMPOTENCY_KEY_MAX_LENGTH}
                    ]
                },
            )
        )
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return services.Idempotency(key=key, fingerprint=hashlib.sha256(canonical.encode()).hexdigest())


@api_view("GET")
def models(request: AuthenticatedHttpRequest) -> JsonResponse:
    """The enabled providers and what each model accepts."""
    return JsonResponse(
        {
            "providers": [
                {
                    "name": name,
                    "label": str(provider.label),
                    "is_sketch": provider.is_sketch,
                    "models": [model.as_dict() for model in offered_models(name, provider)],
                }
                for name, provider in enabled_providers().items()
            ]
        }
    )


# --- tasks and history ------------------------------------------------------------------------


@api_view("GET", "DELETE")
def task_detail(request: AuthenticatedHttpRequest, task_id: str) -> HttpResponse:
    if request.method == "DELETE":
        return _delete_task(owned(Task, request).filter(pk=task_id))
    task = find_owned(Task, request, task_id)
    if task is None:
        return error(404, "not_found", _("No such task."))
    # Images are stored in the transaction that completes the task: an unfinished one has none.
    return JsonResponse(task_json(task, _TASK_IMAGES.all(task.pk) if task.is_finished else []))


# Compiled once (generator.lib.prepared): scripts poll a task until it has its images.
_TASK_IMAGES = PreparedQuery(
    Image, lambda task_id: Image.objects.filter(task_id=task_id), [Image._meta.get_field("task")]
)


@api_view("POST")
def task_cancel(request: AuthenticatedHttpRequest, task_id: str) -> HttpResponse:
    """Stop the task (services.cancel_task): canceled at once, nothing it makes is kept."""
    task = owned(Task, request).filter(pk=task_id).first()
    if task is None:
        return error(404, "not_found", _("No such task."))
    if not services.cancel_task(task):
        return error(409, "already_finished", _("This task has already finished: there is nothing to stop."))
    return JsonResponse(task_json(task))


@api_view("DELETE")
def history_delete(request: AuthenticatedHttpRequest, task_id: str) -> HttpResponse:
    return _delete_task(owned(Task, request).filter(pk=task_id, status__in=FINISHED_STATUSES))


def _delete_task(tasks: QuerySet[Task]) -> HttpResponse:
    """Delete the task with its images and files (a worker still on it keeps nothing)."""
    if not services.delete_tasks(tasks):
        return error(404, "not_found", _("No such task."))
    return HttpResponse(status=204)


@api_view("GET")
def task_list(request: AuthenticatedHttpRequest) -> JsonResponse:
    return _task_list(request, owned(Task, request))


@api_view("GET")
def history_list(request: AuthenticatedHttpRequest) -> JsonResponse:
    return _task_list(request, owned(Task, request).filter(status__in=FINISHED_STATUSES))


def _task_list(request: AuthenticatedHttpRequest, tasks: QuerySet[Task]) -> JsonResponse:
    status = request.GET.get("status", "")
    if status:
        if status not in Task.Status.values:
            raise bad_query("status", _("Use one of: %(values)s.") % {"values": ", ".join(Task.Status.values)})
        tasks = tasks.filter(status=status)
    query = text_query(request, "q")
    if query:
        tasks = tasks.filter(prompt_matches(query))
    page = list_page(tasks.prefetch_related("images"), request)
    return JsonResponse({"results": [task_json(task) for task in page.rows], "next": page.next_cursor})


# --- images and their tags --------------------------------------------------------------------


@api_view("GET")
def image_list(request: AuthenticatedHttpRequest) -> JsonResponse:
    images = owned(Image, request).select_related("task").prefetch_related("tags")
    tag_name = text_query(request, "tag")
    if tag_name:
        images = images.filter(tags__owner=request.user, tags__name__iexact=tag_name)
    favorite = request.GET.get("favorite", "")
    if favorite:
        if favorite not in ("true", "false", "1", "0"):
            raise bad_query("favorite", _("Use true or false."))
        images = images.filter(is_favorite=favorite in ("true", "1"))
    page = list_page(images, request)
    return JsonResponse(
        {"results": [image_json(image, with_tags=True) for image in page.rows], "next": page.next_cursor}
    )


@api_view("POST")
def image_tag_add(request: AuthenticatedHttpRequest, image_id: str) -> JsonResponse:
    image = _image_or_404(request, image_id)
    body = json_object(request, example=_('Send a JSON object like {"name": "sunsets"}.'))
    try:
        tag = tags.tag_for(request.user, body.get("name"))
    except ValidationError as exc:
        return error(400, "validation_error", _("The tag name is not valid."), {"name": exc.messages})
    image.tags.add(tag)
    return JsonResponse({"image_id": str(image.pk), "tags": sorted(t.name for t in image.tags.all())}, status=201)


@api_view("DELETE")
def image_tag_remove(request: AuthenticatedHttpRequest, image_id: str, name: str) -> HttpResponse:
    image = _image_or_404(request, image_id)
    if "\x00" in name:  # no tag name holds one (and PostgreSQL cannot compare with it)
        return error(404, "not_found", _("This image has no such tag."))
    tag = Tag.objects.filter(owner=request.user, name__iexact=name.strip(), images=image).first()
    if tag is None:
        return error(404, "not_found", _("This image has no such tag."))
    image.tags.remove(tag)
    return HttpResponse(status=204)


def _image_or_404(request: AuthenticatedHttpRequest, image_id: str) -> Image:
    image = owned(Image, request).filter(pk=image_id).first()
    if image is None:
        raise BadRequest(error(404, "not_found", _("No such image.")))
    return image


# --- this person and this server --------------------------------------------------------------


@api_view("GET")
def system_info(request: AuthenticatedHttpRequest) -> JsonResponse:
    """This server's providers with their limits and load, and this person's limits.

    A fixed number of queries however many providers: the load is two grouped counts
    (provider_limits.in_flight and waiting), the limits come from settings.
    """
    generate_usage = limits.usage(request, limits.GENERATE_GROUP)
    api_usage = limits.usage(request, limits.API_GROUP)
    queued = owned(Task, request).filter(status__in=CLAIMABLE_STATUSES).count()
    flying, waiting = provider_limits.in_flight(), provider_limits.waiting()
    return JsonResponse(
        {
            "version": settings.ATELIER_VERSION,
            "providers": [
                _provider_json(name, provider, flying.get(name, 0), waiting.get(name, 0))
                for name, provider in enabled_providers().items()
            ],
            "limits": {
                **_quotas_json(request),
                "queued_tasks": {"used": queued, "max": settings.MAX_QUEUED_TASKS_PER_USER},
                "generate_rate": {
                    "rate": settings.GENERATE_RATE,
                    "used": generate_usage.get("count", 0),
                    "resets_in": generate_usage.get("time_left"),
                },
                "api_rate": {
                    "rate": settings.API_RATE,
                    "used": api_usage.get("count", 0),
                    "resets_in": api_usage.get("time_left"),
                },
            },
        }
    )


def _quotas_json(request: AuthenticatedHttpRequest) -> dict:
    """The person's quotas (usage.quotas): used, max (null: no limit) and when each resets; spend
    in USAGE_CURRENCY, as a number."""
    standings, _used = quotas.standings(request.user)
    answer = {}
    for standing in standings:
        entry: dict = {
            "used": standing.used,
            "max": standing.limit,
            "resets_at": isoformat(standing.resets_at.astimezone(UTC)),
        }
        if standing.is_spend:
            entry["used"] = float(standing.used)
            entry["max"] = None if standing.limit is None else float(standing.limit)
            entry["currency"] = settings.USAGE_CURRENCY
        answer[standing.kind] = entry
    return answer


def _provider_json(name: str, provider: Provider, in_flight: int, queued: int) -> dict:
    """A provider as system/info shows it: its calls at once (concurrency), its rate ("10/m",
    or null for none) and its load across everyone: calls in flight, tasks waiting for it."""
    limit = provider_limits.limit_for(name)
    return {
        "name": name,
        "label": str(provider.label),
        "is_sketch": provider.is_sketch,
        "concurrency": limit.concurrency,
        "rate": limit.rate.text if limit.rate else None,
        "in_flight": in_flight,
        "queued": queued,
    }
