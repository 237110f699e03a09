"""/v1/: OpenAI's images API (generations), its model list, and the signed image links.

A generation makes an ordinary task for the token's owner (limits, quotas, scheduling, history
and gallery all apply; its images are tagged openai-api), then waits for it on the event loop
(gateway.waiting) for up to OPENAI_COMPAT_WAIT_SECONDS and answers with its pictures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from accounts.http import AuthenticatedHttpRequest
from generator import limits, services
from generator.forms import GenerateForm
from generator.models import Image, Task
from usage.quotas import QuotaExceeded

from . import catalogue, links
from .errors import INSUFFICIENT_QUOTA, SERVER, OpenAIError, rate_limited
from .generation import Ask, b64, form_fields, form_refusal, read_ask, response_format, task_refusal
from .http import in_pool, json_body, openai_view
from .waiting import Outcome, wait_for_task

# Whoever fetched a picture may keep it; shared caches may not (the link is the permission).
LINK_CACHE = "private"


@dataclass(frozen=True)
class Submitted:
    task: Task
    answer_as: str  # "url" or "b64_json"


@openai_view("POST")
async def generations(request: AuthenticatedHttpRequest) -> HttpResponseBase:
    ask = read_ask(json_body(request))
    submitted = await in_pool(_submit)(request, ask)
    outcome = await wait_for_task(
        submitted.task.pk,
        submitted.task.owner_id,
        seconds=settings.OPENAI_COMPAT_WAIT_SECONDS,
        hub=isinstance(request, ASGIRequest),
    )
    if not outcome.finished:
        raise _still_running(submitted.task, stopping=outcome.stopping)
    return await in_pool(_answer)(request, outcome, submitted.answer_as)


def _submit(request: AuthenticatedHttpRequest, ask: Ask) -> Submitted:
    """Validate as /api/v1/generate does and make the task (counted against GENERATE_RATE)."""
    model = catalogue.resolve(ask.model)
    form = GenerateForm(form_fields(ask, model))
    if not form.is_valid():
        raise form_refusal(form.errors)
    try:  # QuotaExceeded is a kind of RateExceeded: it must be caught first
        task = services.create_task(
            request.user, form.task_settings(), rate=limits.GenerationRate(request), source=Task.Source.OPENAI
        )
    except QuotaExceeded as over:
        seconds = max(1, math.ceil((over.resets_at - timezone.now()).total_seconds()))
        raise OpenAIError(
            429,
            over.exceeded.message,
            type=INSUFFICIENT_QUOTA,
            code=INSUFFICIENT_QUOTA,
            retry_after=seconds,
            retry=False,
        ) from None
    except limits.RateExceeded as refused:
        raise rate_limited(refused.exceeded) from None
    except services.TooManyQueuedTasks as cap:
        raise rate_limited(limits.queued_cap_exceeded(cap)) from None
    return Submitted(task, response_format(ask, model))


def _still_running(task: Task, *, stopping: bool) -> OpenAIError:
    if stopping:
        message = _("The server is restarting. Your picture is still being made and will appear in your gallery.")
    else:
        message = _(
            "The picture was not ready within %(seconds)s seconds. Atelier keeps making it: it will appear "
            "in your gallery and history (task %(task)s)."
        ) % {"seconds": f"{settings.OPENAI_COMPAT_WAIT_SECONDS:g}", "task": task.pk}
    return OpenAIError(503, message, type=SERVER, code="timeout", retry=False)


def _answer(request: HttpRequest, outcome: Outcome, answer_as: str) -> JsonResponse:
    """OpenAI's answer for a completed task: each picture as a signed link or base64."""
    task = outcome.task
    if task is None or task.status != Task.Status.COMPLETED:
        raise task_refusal(task)
    data = []
    for image in task.images.order_by("index"):
        if answer_as == "b64_json":
            with image.file.open("rb") as handle:
                item = {"b64_json": b64(handle.read())}
        else:
            item = {"url": links.image_link(request, image.pk)}
        data.append({**item, "revised_prompt": task.prompt})
    return JsonResponse({"created": int(task.created_at.timestamp()), "data": data, "output_format": "png"})


# --- models -------------------------------------------------------------------------------


@openai_view("GET")
async def model_list(request: AuthenticatedHttpRequest) -> JsonResponse:
    models = await in_pool(catalogue.listed)()
    return JsonResponse({"object": "list", "data": [_model_json(model) for model in models]})


@openai_view("GET")
async def model_detail(request: AuthenticatedHttpRequest, model_id: str) -> JsonResponse:
    return JsonResponse(_model_json(await in_pool(catalogue.resolve)(model_id)))


def _model_json(model: catalogue.Offered) -> dict:
    # When a model was made is not known here; 0 keeps the field an integer, as clients expect.
    return {"id": model.id, "object": "model", "created": 0, "owned_by": model.provider}


# --- the signed links ---------------------------------------------------------------------


@openai_view("GET", "HEAD", authenticated=False)
async def image_file(request: HttpRequest, token: str) -> HttpResponse:
    """The original PNG a link names, to anyone holding the link until it expires."""
    image_id = links.image_id_of(token)
    picture = await in_pool(_original)(image_id) if image_id else None
    if picture is None:
        raise OpenAIError(
            404, _("This image link has expired, was altered, or its image was deleted."), code="not_found"
        )
    data, mime = picture
    response = HttpResponse(b"" if request.method == "HEAD" else data, content_type=mime)
    response["Content-Length"] = str(len(data))
    response["Cache-Control"] = LINK_CACHE
    return response


def _original(image_id: str) -> tuple[bytes, str] | None:
    """The image's original file and its type; None when the row or the file is gone."""
    image = Image.objects.filter(pk=image_id).first()
    if image is None:
        return None
    try:
        with image.file.open("rb") as handle:
            return handle.read(), image.mime
    except (FileNotFoundError, ValueError):
        return None


@csrf_exempt  # it changes nothing: any method gets the same 404
@login_not_required
def not_found(request: HttpRequest, path: str = "") -> HttpResponse:
    """Every other /v1/ address, in OpenAI's shape whatever DEBUG says."""
    message = _("Unknown address: %(method)s %(path)s") % {"method": request.method, "path": request.path}
    return OpenAIError(404, message, code="unknown_url").response()
