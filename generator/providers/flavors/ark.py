"""VolcEngine Ark: Seedream over the OpenAI-style API (docs/reference/providers.md §2).

Sources, each a vendor page (read from stored copies in 2026):
* the models and their limits: 图片生成 API, volcengine.com/docs/82379/1541523 (Seedream 5.0 pro,
  5.0 lite, 4.5, 4.0), and the 5.0 pro / flash guide, docs.volcengine.com/docs/ark/seedream-5-0-pro
  (flash is pro's contract under another model id). Seedream 3.0 t2i is retired and gone from
  the page, and with it the only Seedream that took `seed` and `guidance_scale`: the page
  documents neither field for any current model, and no `n` (one picture per call).
* the errors: 错误码, volcengine.com/docs/82379/1299023 (its inference table, updated 2026-08-18).
* the model list: GET {base}/models answers the public catalogue OpenAI-style, each entry with a
  `status` of "Retiring" or "Shutdown" once Ark retires it (no status while it is current). The
  Ark pages in the stored copies do not document this route; it is known from answers seen in
  the field, so nothing here depends on more than `id` and `status`.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from ..base import ModelInfo
from ..errors import Kind, short_detail
from . import Flavor, ModelSpec, by_status, error_object

# --- the models ---------------------------------------------------------------------------

SEEDREAM_5_PRO = "doubao-seedream-5-0-pro-260628"
SEEDREAM_5_LITE = "doubao-seedream-5-0-260128"
SEEDREAM_5_LITE_ALIAS = "doubao-seedream-5-0-lite-260128"  # the same model under its long name
SEEDREAM_5_FLASH = "doubao-seedream-5-0-flash-260915"
SEEDREAM_4_5 = "doubao-seedream-4-5-251128"
SEEDREAM_4 = "doubao-seedream-4-0-250828"

# Every current Seedream bounds a picture by its area and its shape, not by each side:
# width × height within the model's range, and width / height within [1/16, 16].
MAX_ASPECT_RATIO = 16
PRO_PIXELS = (1280 * 720, 4_624_220)  # 921,600 to 2048 × 2048 × 1.1025: 5.0 pro and flash
LITE_PIXELS = (2560 * 1440, 4096 * 4096)  # 3,686,400 to 16,777,216: 5.0 lite and 4.5
SEEDREAM_4_PIXELS = (1280 * 720, 4096 * 4096)  # 921,600 to 16,777,216
# A model id Ark's pages do not describe (an endpoint id "ep-…" serves any of them) gets the
# range the family documents as a whole; a size its model refuses comes back as InvalidParameter.
FAMILY_PIXELS = (1280 * 720, 4096 * 4096)

# The page's sizes for the default "2K" tier (1:1, 4:3, 3:4, 16:9, 9:16, 3:2, 2:3, 21:9): what the
# size menu suggests. Each of them is within every current model's range.
PRO_2K = (
    (2048, 2048),
    (2368, 1776),
    (1776, 2368),
    (2816, 1584),
    (1584, 2816),
    (2496, 1664),
    (1664, 2496),
    (3136, 1344),
)
LITE_2K = (
    (2048, 2048),
    (2304, 1728),
    (1728, 2304),
    (2848, 1600),
    (1600, 2848),
    (2496, 1664),
    (1664, 2496),
    (3136, 1344),
)
FAMILY_2K = tuple(dict.fromkeys(LITE_2K + PRO_2K))


def _seedream(model_id: str, label: str, pixels: tuple[int, int], suggested: tuple[tuple[int, int], ...]) -> ModelSpec:
    low, high = pixels
    return ModelSpec(
        ModelInfo(
            id=model_id,
            label=label,
            # The sides that area and shape allow: the shortest side of the smallest picture at
            # 16:1, the longest side of the largest one. No side has a limit of its own, nor a
            # multiple (the page's own valid example is 3750x1250).
            min_size=math.ceil(math.sqrt(low / MAX_ASPECT_RATIO)),
            max_size=math.isqrt(high * MAX_ASPECT_RATIO),
            size_multiple=1,
            min_pixels=low,
            max_pixels=high,
            max_aspect_ratio=MAX_ASPECT_RATIO,
            supports_negative_prompt=False,
            supports_seed=False,
            suggested_sizes=suggested,
        )
    )


ARK_MODELS = {
    SEEDREAM_5_PRO: _seedream(SEEDREAM_5_PRO, "Seedream 5.0 Pro", PRO_PIXELS, PRO_2K),
    SEEDREAM_5_LITE: _seedream(SEEDREAM_5_LITE, "Seedream 5.0 Lite", LITE_PIXELS, LITE_2K),
    SEEDREAM_5_LITE_ALIAS: _seedream(SEEDREAM_5_LITE_ALIAS, "Seedream 5.0 Lite", LITE_PIXELS, LITE_2K),
    SEEDREAM_5_FLASH: _seedream(SEEDREAM_5_FLASH, "Seedream 5.0 Flash", PRO_PIXELS, PRO_2K),
    SEEDREAM_4_5: _seedream(SEEDREAM_4_5, "Seedream 4.5", LITE_PIXELS, LITE_2K),
    SEEDREAM_4: _seedream(SEEDREAM_4, "Seedream 4.0", SEEDREAM_4_PIXELS, LITE_2K),
}

# Offered when ARK_MODELS is unset: the three 5.0 models.
DEFAULT_MODELS = (SEEDREAM_5_LITE, SEEDREAM_5_PRO, SEEDREAM_5_FLASH)


def _ark_generic(model_id: str) -> ModelSpec:
    return _seedream(model_id, model_id, FAMILY_PIXELS, FAMILY_2K)


# --- the errors ---------------------------------------------------------------------------


class ArkCode(NamedTuple):
    """One row of Ark's error table: its code (a row also answers for the code's dotted
    sub-codes, "InvalidParameter" for "InvalidParameter.size"), the HTTP status the table gives
    it, our catalogue key (errors.MESSAGES) and what it asks of whom. `wording`, when set, is a
    piece of Ark's message that tells apart rows sharing one code."""

    code: str
    status: int
    key: str
    kind: Kind
    wording: str = ""


REQUEST, ACCOUNT, CONTENT, TRANSIENT = Kind.REQUEST, Kind.ACCOUNT, Kind.CONTENT, Kind.TRANSIENT

# Every code of the inference error table of volcengine.com/docs/82379/1299023 (the table of
# fine-tuning jobs and the Managed Agent codes are not answers to /images/generations).
ARK_CODES: tuple[ArkCode, ...] = (
    # 400 BadRequest: the request
    ArkCode("MissingParameter", 400, "invalid_request", REQUEST),  # and MissingParameter.{Parameter}
    # InvalidParameter.{Parameter}, .UnsupportedParameter, .TaskTypeConstraint, .TaskTypeMismatch, .TosURLInvalid
    ArkCode("InvalidParameter", 400, "invalid_request", REQUEST),
    ArkCode("InvalidArgumentError", 400, "invalid_request", REQUEST),  # .UnknownRole, .InvalidImageDetail, …
    ArkCode("InvalidImageURL", 400, "invalid_request", REQUEST),  # .EmptyURL, .InvalidFormat
    ArkCode("OutofContextError", 400, "invalid_request", REQUEST),
    ArkCode("Duplicate.Tags.Key", 400, "invalid_request", REQUEST),
    # "currently closed or temporarily unavailable … retry later, or ask the endpoint's administrator"
    ArkCode("InvalidEndpoint.ClosedEndpoint", 400, "provider_unavailable.endpoint_closed", TRANSIENT),
    # 400 BadRequest: moderation of the prompt (content) and of the picture made (output)
    ArkCode("SensitiveContentDetected", 400, "content_rejected", CONTENT),  # .SevereViolation, .Violence
    *(
        ArkCode(
            f"Input{medium}SensitiveContentDetected.PolicyViolation",
            400,
            "content_rejected.intellectual_property",
            CONTENT,
        )
        for medium in ("Text", "Image", "Video", "Audio")
    ),
    # Input{Image,Video}SensitiveContentDetected.PrivacyInformation: a real person in an input picture
    *(
        ArkCode(f"Input{medium}SensitiveContentDetected", 400, "content_rejected", CONTENT)
        for medium in ("Text", "Image", "Video", "Audio")
    ),
    # OutputImage….DeepFake, Output{Video,Audio}….PolicyViolation
    *(
        ArkCode(f"Output{medium}SensitiveContentDetected", 400, "output_rejected", CONTENT)
        for medium in ("Text", "Image", "Video", "Audio")
    ),
    # The account's own content-security product (风险识别) flagged the prompt or the picture.
    ArkCode("InputTextRiskDetection", 400, "content_rejected", CONTENT),
    ArkCode("InputImageRiskDetection", 400, "content_rejected", CONTENT),
    ArkCode("OutputTextRiskDetection", 400, "output_rejected", CONTENT),
    ArkCode("OutputImageRiskDetection", 400, "output_rejected", CONTENT),
    ArkCode("ContentSecurityDetectionError", 400, "provider_unavailable", TRANSIENT),  # that product failed
    # 400 / 401 / 403: the account
    ArkCode("InvalidSubscription", 400, "quota_exhausted.billing", ACCOUNT),  # no (or an expired) plan
    ArkCode("AuthenticationError", 401, "authentication_failed", ACCOUNT),
    ArkCode("InvalidAccountStatus", 401, "permission_denied.http_403", ACCOUNT),
    ArkCode("AccountOverdueError", 403, "quota_exhausted.billing", ACCOUNT),  # an overdue balance
    ArkCode("OperationDenied.ServiceOverdue", 403, "quota_exhausted.billing", ACCOUNT),
    ArkCode("OperationDenied.ServiceNotOpen", 403, "permission_denied.service_activation", ACCOUNT),
    ArkCode("OperationDenied.InvalidState", 403, "provider_unavailable", TRANSIENT),  # busy: wait and retry
    ArkCode("OperationDenied.FileQuotaExceeded", 403, "quota_exhausted", ACCOUNT),
    # .PermissionDenied, .UnsupportedPhase, .ArkAccessRoleNotFound, .TosAccessDenied, and the fine-tuning ones
    ArkCode("OperationDenied", 403, "permission_denied.http_403", ACCOUNT),
    ArkCode("AccessDenied", 403, "permission_denied.http_403", ACCOUNT),  # key restrictions, IP allow-list
    # 404 NotFound: the model or endpoint
    ArkCode("InvalidEndpointOrModel.ModelIDAccessDisabled", 404, "permission_denied.http_403", ACCOUNT),
    ArkCode("InvalidEndpointOrModel", 404, "model_not_found", ACCOUNT),  # .NotFound
    ArkCode("InvalidEndpoint", 404, "model_not_found", ACCOUNT),  # .NotFound, the earlier table's spelling
    ArkCode("ModelNotOpen", 404, "permission_denied.model_activation", ACCOUNT),  # not activated in the console
    ArkCode("UnsupportedModel", 404, "model_not_found", ACCOUNT),  # not in the account's plan
    ArkCode("NotFound", 404, "model_not_found", ACCOUNT),  # NotFound.{Parameter}
    # 429 TooManyRequests: rates, bursts and quotas
    ArkCode("RateLimitExceeded", 429, "rate_limited", TRANSIENT),  # .EndpointRPMExceeded, .EndpointTPMExceeded
    ArkCode("ModelAccountRpmRateLimitExceeded", 429, "rate_limited", TRANSIENT),
    ArkCode("ModelAccountTpmRateLimitExceeded", 429, "rate_limited", TRANSIENT),
    ArkCode("ModelAccountIpmRateLimitExceeded", 429, "rate_limited", TRANSIENT),  # images per minute
    ArkCode("APIAccountRpmRateLimitExceeded", 429, "rate_limited", TRANSIENT),
    ArkCode("AccountRateLimitExceeded", 429, "rate_limited", TRANSIENT),
    ArkCode("RequestBurstTooFast", 429, "rate_limited", TRANSIENT),
    ArkCode("InflightBatchsizeExceeded", 429, "rate_limited", TRANSIENT),  # concurrency for the recharged amount
    ArkCode("ServerOverloaded", 429, "provider_unavailable", TRANSIENT),
    ArkCode("QuotaExceeded", 429, "quota_exhausted.free_quota", ACCOUNT, "free trial"),
    ArkCode("QuotaExceeded", 429, "rate_limited", TRANSIENT, "the request has exceeded the quota"),  # queued tasks
    ArkCode("QuotaExceeded", 429, "quota_exhausted", ACCOUNT),  # a plan's 5-hour, weekly or monthly quota
    # The usage cap set in the Ark console, or its safe-experience mode (安心体验模式): the service is
    # paused until an administrator raises the cap or turns the mode off.
    ArkCode("SetLimitExceeded", 429, "quota_exhausted.usage_cap", ACCOUNT),
    # 500
    ArkCode("InternalServiceError", 500, "provider_unavailable", TRANSIENT),
)


def ark_code(code: str, message: str = "") -> ArkCode | None:
    """The table's row for an Ark code: the code's own row, else its nearest dotted parent's."""
    wording = message.lower()
    while code:
        for row in ARK_CODES:
            if row.code == code and row.wording in wording:
                return row
        code = code.rpartition(".")[0]
    return None


def _classify_ark(status: int, body: Any) -> tuple[str, str]:
    error = error_object(body)
    code, message = str(error.get("code") or ""), short_detail(error.get("message"))
    row = ark_code(code, message)
    if row is not None:
        return row.key, message
    # A moderation code the table does not name yet (Ark adds media and sub-codes).
    if "SensitiveContentDetected" in code or "RiskDetection" in code:
        return ("output_rejected" if code.startswith("Output") else "content_rejected"), message
    return by_status(status), message


# --- the model list -----------------------------------------------------------------------

MODELS_PATH = "/models"
ALIASES = {SEEDREAM_5_LITE_ALIAS: SEEDREAM_5_LITE}


def read_listing(body: Any) -> frozenset[str] | None:
    """The model ids Ark still serves: its list less the entries marked "Shutdown" ("Retiring"
    ones still answer), plus the long names of the models listed under their short ones."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        return None
    served = {
        str(entry["id"])
        for entry in data
        if isinstance(entry, dict) and entry.get("id") and str(entry.get("status") or "").lower() != "shutdown"
    }
    served |= {alias for alias, model_id in ALIASES.items() if model_id in served}
    return frozenset(served)


def judged_by_listing(model_id: str) -> bool:
    """Whether the model list can tell that this id is gone. An endpoint id ("ep-…") names one
    of the account's own inference endpoints, which the list never contains: it must never be
    taken for a retired model (a task for a retired model fails at once, without a call)."""
    return not model_id.startswith("ep-")


FLAVOR = Flavor(
    name="ark",
    label="VolcEngine Ark (Seedream)",
    known_models=ARK_MODELS,
    default_models=DEFAULT_MODELS,
    generic_model=_ark_generic,
    classify=_classify_ark,
    count_field="",  # no n: one image per call
    # watermark defaults to true (an "AI生成" mark); base64 spares downloading a link.
    fixed_fields={"response_format": "b64_json", "watermark": False},
    check_path=MODELS_PATH,
    read_listing=read_listing,
    listing_judges=judged_by_listing,
    listing_optional=True,  # the route is seen in the field, not documented (see the docstring)
    resend_after_read_timeout=False,  # every call is a paid generation
)
