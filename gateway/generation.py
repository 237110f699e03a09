"""An OpenAI images request, checked and turned into the generation form's fields, and a
finished task turned into OpenAI's answer.

The form (generator.forms.GenerateForm) then applies the same rules as the pages and /api/v1:
the model's sizes, counts and seeds. OpenAI's own options that Atelier cannot honour are
accepted and checked, then left out: `quality` and `style` (the provider's configured quality
applies), `user` (the token already says who asks). So are options chat front ends send along
(`background`, `output_format`, `output_compression`, `moderation`): the picture is the
provider's original, always a PNG.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.utils.translation import gettext as _

from generator.models import Task
from generator.providers import ModelInfo
from generator.providers.errors import Kind, kind_of

from .catalogue import Offered
from .errors import SERVER, OpenAIError, invalid

SIZE = re.compile(r"(\d{1,5})x(\d{1,5})")
RESPONSE_FORMATS = ("url", "b64_json")
QUALITIES = ("auto", "standard", "hd", "low", "medium", "high")
STYLES = ("vivid", "natural")
MAX_USER_LENGTH = 256
# The form's field that a problem is reported under -> the OpenAI parameter it came from.
PARAM_OF_FIELD = {"width": "size", "height": "size", "num_images": "n", "provider": "model"}
# Fields whose JSON type is checked before the form sees them (no `true` posing as 1).
STRING_FIELDS = ("prompt", "model", "size", "response_format", "quality", "style", "user", "negative_prompt")
INTEGER_FIELDS = ("n", "seed")


@dataclass(frozen=True)
class Ask:
    """What the request asks for, its types checked."""

    prompt: object
    model: str | None
    n: int | None
    size: str | None
    response_format: str | None
    negative_prompt: str | None
    seed: int | None


def read_ask(body: dict) -> Ask:
    """The request's fields, or a 400 naming the first one that is not valid."""
    for field in STRING_FIELDS:
        if body.get(field) is not None and not isinstance(body[field], str):
            raise invalid(_("Expected a string."), param=field)
    for field in INTEGER_FIELDS:
        value = body.get(field)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise invalid(_("Expected a whole number."), param=field)
    if body.get("stream"):
        raise invalid(_("Atelier does not stream images; leave out `stream`."), param="stream")
    _check_choice(body, "response_format", RESPONSE_FORMATS)
    _check_choice(body, "quality", QUALITIES)
    _check_choice(body, "style", STYLES)
    if len(body.get("user") or "") > MAX_USER_LENGTH:
        raise invalid(_("Keep `user` under %(max)s characters.") % {"max": MAX_USER_LENGTH}, param="user")
    return Ask(
        prompt=body.get("prompt"),
        model=body.get("model") or None,
        n=body.get("n"),
        size=body.get("size") or None,
        response_format=body.get("response_format"),
        negative_prompt=body.get("negative_prompt"),
        seed=body.get("seed"),
    )


def _check_choice(body: dict, field: str, choices: tuple[str, ...]) -> None:
    if body.get(field) is not None and body[field] not in choices:
        raise invalid(_("Use one of: %(choices)s.") % {"choices": ", ".join(choices)}, param=field)


def form_fields(ask: Ask, model: Offered) -> dict[str, object]:
    """The generation form's fields for this request and its resolved model."""
    width, height = _size(ask.size, model.info)
    fields: dict[str, object] = {
        "prompt": ask.prompt if ask.prompt is not None else "",
        "model": model.form_value,
        "width": width,
        "height": height,
        "num_images": ask.n if ask.n is not None else 1,
    }
    if ask.negative_prompt:
        fields["negative_prompt"] = ask.negative_prompt
    if ask.seed is not None:
        fields["seed"] = ask.seed
    return fields


def _size(size: str | None, info: ModelInfo) -> tuple[int, int]:
    """`WxH`, or the model's default for `auto` and no size."""
    if size is None or size == "auto":
        return default_size(info)
    match = SIZE.fullmatch(size)
    if match is None:
        raise invalid(_("Give the size as WIDTHxHEIGHT, such as 1024x1024, or auto."), param="size")
    return int(match.group(1)), int(match.group(2))


def default_size(info: ModelInfo) -> tuple[int, int]:
    """The model's first fixed size, else 1024×1024 where it fits, else its first suggestion."""
    if info.sizes:
        return info.sizes[0]
    if info.size_error(1024, 1024) is None or not info.suggested_sizes:
        return 1024, 1024
    return info.suggested_sizes[0]


def form_refusal(errors: Mapping[str, Sequence[object]]) -> OpenAIError:
    """The form's first problem as a 400 naming the OpenAI parameter it came from."""
    field, messages = next(iter(errors.items()))
    param = None if field == "__all__" else PARAM_OF_FIELD.get(field, field)
    return invalid(str(messages[0]), param=param)


def response_format(ask: Ask, model: Offered) -> str:
    """What the answer carries: as asked; by default a link (as OpenAI's dall-e models did),
    but base64 for a model named like OpenAI's gpt-image ones, which always answer so (Open
    WebUI sends no response_format for those and reads either)."""
    if ask.response_format:
        return ask.response_format
    return "b64_json" if model.id.rpartition(":")[2].startswith("gpt-image") else "url"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def task_refusal(task: Task | None) -> OpenAIError:
    """Why a finished task has no pictures to answer with. Never worth retrying: the answer
    says so (a retry would make, and pay for, a new task)."""
    if task is None or task.status == Task.Status.CANCELED:
        message = _("The task was deleted before it finished.") if task is None else _("The task was canceled.")
        return OpenAIError(409, message, code="task_canceled", retry=False)
    kind = kind_of(task.error_code)
    if kind is Kind.CONTENT:
        return OpenAIError(400, task.error_text, code="content_policy_violation", param="prompt", retry=False)
    if kind is Kind.REQUEST:
        return OpenAIError(400, task.error_text, code=task.error_code, retry=False)
    return OpenAIError(500, task.error_text, type=SERVER, code=task.error_code or "server_error", retry=False)
