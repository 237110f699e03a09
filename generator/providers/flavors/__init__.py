"""What the OpenAI-style services share (the protocol is in ..openai_compatible), and one module
per service with its models, its error table and its dialect: openai, ark, siliconflow."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from ..base import ModelInfo


@dataclass(frozen=True)
class ModelSpec:
    """A model's limits (shown by the form) plus what the request body needs for it."""

    info: ModelInfo
    per_call: int = 1  # images one call can make (n / batch_size); otherwise one call per image
    guidance: tuple[float, float] | None = None  # accepted range, when the model takes guidance
    guidance_field: str = "guidance_scale"
    steps: tuple[int, int] | None = None  # accepted num_inference_steps range
    fixed_fields: dict[str, Any] = field(default_factory=dict)
    # Body fields an operator may set for the whole instance (<PREFIX>QUALITY for "quality"),
    # with the values this model documents; a field it does not document is never sent.
    options: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # The day the vendor shut the model down, when it did (or announced it): kept so that its
    # failures are told as a retirement, not as an unknown model.
    shutdown: date | None = None

    def is_shut_down(self, today: date | None = None) -> bool:
        return self.shutdown is not None and self.shutdown <= (today or utc_today())


@dataclass(frozen=True)
class Flavor:
    """What differs between the three services speaking this protocol."""

    name: str
    label: str
    known_models: dict[str, ModelSpec]
    default_models: tuple[str, ...]  # offered when <PREFIX>MODELS is unset
    generic_model: Callable[[str], ModelSpec]  # conservative limits for a model id we do not know
    classify: Callable[[int, Any], tuple[str, str]]  # (status, body) -> (our catalogue key, vendor's message)
    size_field: str = "size"
    count_field: str = "n"
    fixed_fields: dict[str, Any] = field(default_factory=dict)
    results_key: str = "data"
    request_id_header: str = "x-request-id"
    check_path: str = ""  # a free GET that proves key and reachability; "" means none is known
    # The catalogue: the model ids a check_path answer lists (None: it lists none we can read).
    read_listing: Callable[[Any], frozenset[str] | None] = field(default=lambda body: listed_ids(body))
    # Whether the listing can tell that a configured id is gone (Ark's never names the account's
    # own "ep-…" endpoints): an id it cannot judge is never retired.
    listing_judges: Callable[[str], bool] = field(default=lambda model_id: True)
    # True where the listing is not documented: a 404 from check_path means "no listing", not a
    # wrong base URL, and the check proves only that the service answers.
    listing_optional: bool = False
    # Headers sent when their setting is set: (config key, header name), e.g. OpenAI-Project.
    setting_headers: tuple[tuple[str, str], ...] = ()
    # The read timeout when <PREFIX>TIMEOUT_SECONDS is unset (None: the provider's default).
    timeout_seconds: float | None = None
    # False for a paid call that the vendor may carry out although its answer never came: a
    # read timeout then fails the task, saying so, rather than sending (and paying) again.
    resend_after_read_timeout: bool = True
    # Whether the vendor's x-should-retry header decides if an error is worth another attempt.
    obeys_should_retry: bool = False


def utc_today() -> date:
    return datetime.now(UTC).date()


def listed_ids(body: Any) -> frozenset[str] | None:
    """The ids in an OpenAI-style model list ({"data": [{"id": ...}, ...]}), or None."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        return None
    return frozenset(str(item["id"]) for item in data if isinstance(item, dict) and item.get("id"))


def error_object(body: Any) -> dict:
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def by_status(status: int) -> str:
    """Our code from the HTTP status alone, when the body names nothing we know."""
    if status == 401:
        return "authentication_failed"
    if status == 402:
        return "quota_exhausted"
    if status == 403:
        return "permission_denied"
    if status == 404:
        return "model_not_found"
    if status == 429:
        return "rate_limited"
    if status in (408, 425) or status >= 500:
        return "provider_unavailable"
    if 400 <= status < 500:
        return "invalid_request"
    return "provider_error"
