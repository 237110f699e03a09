"""OpenAI's image API: the GPT image models (docs/reference/providers.md §5).

Models, sizes and options follow the official SDK (openai 3.63.0, pinned in
requirements-test.txt): `openai/types/image_model.py` and the docstrings of
`openai/types/image_generate_params.py`. Shutdown dates come from the same docstrings and from
OpenAI's deprecations page (developers.openai.com/api/docs/deprecations).
tests/test_openai_sdk_currency.py fails when the installed SDK marks a default model here as
deprecated or shut down, or marks one this table does not know as retired.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from ..base import ModelInfo
from ..errors import short_detail
from . import Flavor, ModelSpec, by_status, error_object, utc_today

# --- models -------------------------------------------------------------------------------

# The standard sizes every GPT image model takes (image_generate_params.py, `size`).
STANDARD_SIZES = ((1024, 1024), (1536, 1024), (1024, 1536))
MAX_IMAGES_PER_CALL = 10  # `n`: "Must be between 1 and 10."
# `quality`: low/medium/high/auto for the GPT image models; the 2.5 models (and their snapshots)
# also take xhigh and max. `background`: transparent, opaque or auto.
QUALITIES = ("low", "medium", "high", "auto")
QUALITIES_2_5 = (*QUALITIES, "xhigh", "max")
BACKGROUNDS = ("transparent", "opaque", "auto")


def gpt_image(
    model_id: str,
    label: str,
    *,
    qualities: tuple[str, ...] = QUALITIES,
    flexible: bool = True,
    shutdown: date | None = None,
) -> ModelSpec:
    """A GPT image model: no seed, no negative prompt, up to 10 images in one call, always
    base64 (response_format must not be sent).

    Flexible models take any WIDTHxHEIGHT with both sides multiples of 16, a ratio between 1:3
    and 3:1, at most 3840x2160 worth of pixels and a 3840 edge (the SDK's `size` docstring), and
    at least 655,360 pixels (OpenAI's image generation guide); so no side is under 480. The
    standard sizes are among them. Others take the standard sizes only."""
    limits: dict[str, Any] = (
        {
            "min_size": 480,
            "max_size": 3840,
            "size_multiple": 16,
            "min_pixels": 655_360,
            "max_pixels": 3840 * 2160,
            "max_aspect_ratio": 3,
            # The size menu suggests the standard sizes, a 2K square and widescreen, and 4K.
            "suggested_sizes": (*STANDARD_SIZES, (2048, 2048), (2048, 1152), (3840, 2160)),
        }
        if flexible
        else {"sizes": STANDARD_SIZES}
    )
    return ModelSpec(
        ModelInfo(
            id=model_id,
            label=label,
            max_images=MAX_IMAGES_PER_CALL,
            supports_negative_prompt=False,
            supports_seed=False,
            **limits,
        ),
        per_call=MAX_IMAGES_PER_CALL,
        options={"quality": qualities, "background": BACKGROUNDS},
        shutdown=shutdown,
    )


def _current() -> dict[str, ModelSpec]:
    """The GPT image models the SDK names and OpenAI has not announced a shutdown for."""
    models = [
        gpt_image("gpt-image-2", "GPT Image 2"),
        gpt_image("gpt-image-2-2026-04-21", "GPT Image 2 (2026-04-21)"),
        gpt_image("gpt-image-2.6-flare", "GPT Image 2.6 Flare"),
        gpt_image("gpt-image-2.6-sunburst", "GPT Image 2.6 Sunburst"),
    ]
    for name in ("flare", "sunburst"):
        label = f"GPT Image 2.5 {name.title()}"
        models.append(gpt_image(f"gpt-image-2.5-{name}", label, qualities=QUALITIES_2_5))
        snapshot = f"gpt-image-2.5-{name}-2026-09-08"
        models.append(gpt_image(snapshot, f"{label} (2026-09-08)", qualities=QUALITIES_2_5))
    return {spec.info.id: spec for spec in models}


# Shut down, and kept only so that a task for one fails as a retirement ("model_retired") and
# the form keeps their old limits while an operator still lists one.
GPT_IMAGE_1_SHUTDOWN = date(2026, 10, 23)  # image_model.py: "GPT Image 1 was shut down on October 23, 2026"
GPT_IMAGE_1_5_SHUTDOWN = date(2026, 12, 1)  # deprecations page: gpt-image-1-mini, gpt-image-1.5, chatgpt-image-latest
DALL_E_SHUTDOWN = date(2026, 5, 12)  # image_model.py: dall-e-2, dall-e-3 "retired on May 12, 2026"


def _retired() -> dict[str, ModelSpec]:
    models = [
        gpt_image("gpt-image-1", "GPT Image 1", flexible=False, shutdown=GPT_IMAGE_1_SHUTDOWN),
        gpt_image("gpt-image-1-mini", "GPT Image 1 mini", flexible=False, shutdown=GPT_IMAGE_1_5_SHUTDOWN),
        gpt_image("gpt-image-1.5", "GPT Image 1.5", flexible=False, shutdown=GPT_IMAGE_1_5_SHUTDOWN),
        gpt_image(
            "gpt-image-1.5-2025-12-16", "GPT Image 1.5 (2025-12-16)", flexible=False, shutdown=GPT_IMAGE_1_5_SHUTDOWN
        ),
        gpt_image("chatgpt-image-latest", "ChatGPT Image (latest)", flexible=False, shutdown=GPT_IMAGE_1_5_SHUTDOWN),
        ModelSpec(
            # n must be 1, so several images are several calls; base64 spares a download of a
            # link that expires in an hour.
            ModelInfo(
                id="dall-e-3",
                label="DALL·E 3",
                sizes=((1024, 1024), (1792, 1024), (1024, 1792)),
                supports_negative_prompt=False,
                supports_seed=False,
            ),
            fixed_fields={"response_format": "b64_json"},
            shutdown=DALL_E_SHUTDOWN,
        ),
        ModelSpec(
            ModelInfo(
                id="dall-e-2",
                label="DALL·E 2",
                sizes=((256, 256), (512, 512), (1024, 1024)),
                max_images=MAX_IMAGES_PER_CALL,
                supports_negative_prompt=False,
                supports_seed=False,
            ),
            per_call=MAX_IMAGES_PER_CALL,
            fixed_fields={"response_format": "b64_json"},
            shutdown=DALL_E_SHUTDOWN,
        ),
    ]
    return {spec.info.id: spec for spec in models}


OPENAI_MODELS = {**_current(), **_retired()}
DEFAULT_MODELS = ("gpt-image-2.6-flare", "gpt-image-2.6-sunburst", "gpt-image-2")


def _openai_generic(model_id: str) -> ModelSpec:
    """A model id the table does not know: a newer GPT image model gets the GPT image limits;
    anything else (a compatible gateway's own model) the standard sizes and `n`, and no
    quality or background, which such a model may not take."""
    if model_id.startswith("gpt-image-"):
        return gpt_image(model_id, model_id)
    spec = gpt_image(model_id, model_id, flexible=False)
    return ModelSpec(spec.info, per_call=spec.per_call)


# --- the model list (check) ---------------------------------------------------------------


def _shutdown_passed(value: Any, today: date) -> bool:
    """True when a listed model's shutdown_date ("YYYY-MM-DD", or null when none is announced)
    is today or earlier; a Unix timestamp is read too."""
    try:
        if isinstance(value, str) and value:
            return date.fromisoformat(value[:10]) <= today
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC).date() <= today
    except (ValueError, OverflowError, OSError):
        pass
    return False


def current_ids(body: Any) -> frozenset[str] | None:
    """The ids GET /models lists, less those whose shutdown_date has come (the deprecations
    page: "call the List models endpoint and check each model's optional shutdown_date")."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        return None
    today = utc_today()
    return frozenset(
        str(item["id"])
        for item in data
        if isinstance(item, dict) and item.get("id") and not _shutdown_passed(item.get("shutdown_date"), today)
    )


# --- errors -------------------------------------------------------------------------------
#
# OpenAI's error table: {"error": {"message", "type", "param", "code"}} (SDK _exceptions.APIError)
# and the HTTP status. Sources: the codes on developers.openai.com/api/docs/guides/error-codes;
# moderation_blocked and its moderation_details.moderation_stage ("input", "output", "unknown")
# from the SDK's image generation types; the classes the SDK retries from
# openai/_base_client.py `_should_retry`: the x-should-retry header first (honoured by
# openai_compatible._error), then 408, 409 (lock timeout), 429 and >= 500.
#
# Each value is our catalogue key (errors.MESSAGES); its code sets the class (errors.KIND_OF_CODE):
# content_rejected/output_rejected → content, quota/auth/permission/model → account,
# invalid_request → request, rate_limited/provider_unavailable → transient.
OPENAI_CODES: dict[str, str] = {
    # error.code
    "content_policy_violation": "content_rejected",
    "image_content_policy_violation": "content_rejected",
    "moderation_blocked": "content_rejected",  # at the "output" stage: output_rejected (below)
    "insufficient_quota": "quota_exhausted",  # a 429 that looks like a rate limit; retrying never helps
    "billing_hard_limit_reached": "quota_exhausted",
    "credit_balance_exhausted": "quota_exhausted",
    "model_not_found": "model_not_found",
    "invalid_api_key": "authentication_failed",
    "unsupported_country_region_territory": "permission_denied",
    "rate_limit_exceeded": "rate_limited",
    "slow_down": "rate_limited",
    "server_is_overloaded": "provider_unavailable",
}
# error.type, when the code names nothing above (insufficient_quota is also sent as a type).
OPENAI_TYPES: dict[str, str] = {"insufficient_quota": "quota_exhausted"}
# 409 is a lock timeout that the SDK retries; the others follow flavors.by_status.
OPENAI_STATUSES: dict[int, str] = {409: "provider_unavailable"}
# "Your organization must be verified to use the model `…`" comes as a 403 with no code.
VERIFICATION_WORDS = "must be verified"
# A model_not_found whose message says this is a retirement, not a typo.
RETIREMENT_WORDS = ("deprecated", "shut down", "retired", "no longer available")


def _moderation_stage(error: dict) -> str:
    details = error.get("moderation_details")
    stage = details.get("moderation_stage") if isinstance(details, dict) else error.get("moderation_stage")
    return str(stage or "")


def _classify_openai(status: int, body: Any) -> tuple[str, str]:
    error = error_object(body)
    code, kind = str(error.get("code") or ""), str(error.get("type") or "")
    message = short_detail(error.get("message"))
    wording = message.lower()
    if VERIFICATION_WORDS in wording and status in (400, 403):
        return "permission_denied.verification", message
    if code == "moderation_blocked" and _moderation_stage(error) == "output":
        return "output_rejected", message
    key = OPENAI_CODES.get(code) or OPENAI_TYPES.get(kind) or OPENAI_STATUSES.get(status) or by_status(status)
    if key == "model_not_found" and any(words in wording for words in RETIREMENT_WORDS):
        key = "model_retired"
    return key, message


FLAVOR = Flavor(
    name="openai",
    label="OpenAI",
    known_models=OPENAI_MODELS,
    default_models=DEFAULT_MODELS,
    generic_model=_openai_generic,
    classify=_classify_openai,
    check_path="/models",
    read_listing=current_ids,
    # OPENAI_ORGANIZATION and OPENAI_PROJECT, as the SDK sends them (openai/_client.py).
    setting_headers=(("ORGANIZATION", "OpenAI-Organization"), ("PROJECT", "OpenAI-Project")),
    # The SDK waits 600 s for an answer (openai/_constants.py DEFAULT_TIMEOUT): a GPT image call
    # at high quality and n up to 10 can take minutes, and a cut-off call may still be billed.
    timeout_seconds=600.0,
    resend_after_read_timeout=False,
    obeys_should_retry=True,
)
