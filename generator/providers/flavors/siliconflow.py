"""SiliconFlow: Kolors, Qwen-Image, FLUX over the OpenAI-style API (docs/reference/providers.md §4).

Sources, each a vendor page on docs.siliconflow.cn (read from stored copies in 2026):
* the request: 创建图片生成请求, /api-reference/images/images-generations (image_size "WxH" with
  recommended values for Kolors and Qwen-Image, batch_size 1–4 for Kolors only, seed up to
  9,999,999,999, num_inference_steps 1–100, guidance_scale up to 20 for Kolors only, cfg for
  Qwen-Image, negative_prompt for every model). The page names no other text-to-image model's
  sizes: FLUX and newer ids get the general limits below, and the model list says which exist.
* the model list: 获取用户模型列表, /api-reference/models/get-model-list (GET /models with `type`
  and `sub_type` filters).
* the errors: 错误处理, /faqs/error-code (the HTTP statuses, and code 20012), and the error
  examples of the API reference (50505 "Model service overloaded", the bare "Invalid token").
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..base import ModelInfo
from ..errors import Kind, short_detail
from . import Flavor, ModelSpec, by_status, error_object

# --- the models ---------------------------------------------------------------------------

SILICONFLOW_MAX_SEED = 9_999_999_999
KOLORS = "Kwai-Kolors/Kolors"
QWEN_IMAGE = "Qwen/Qwen-Image"
STEPS = (1, 100)  # num_inference_steps, for every model (default 20)

KOLORS_SIZES = ((1024, 1024), (960, 1280), (768, 1024), (720, 1440), (720, 1280))
QWEN_IMAGE_SIZES = ((1328, 1328), (1664, 928), (928, 1664), (1472, 1140), (1140, 1472), (1584, 1056), (1056, 1584))
# "Strongly recommended" per model; a model the page does not describe is offered all of them.
DOCUMENTED_SIZES = tuple(dict.fromkeys(KOLORS_SIZES + QWEN_IMAGE_SIZES))


def _siliconflow_generic(model_id: str) -> ModelSpec:
    # What the page gives every model: image_size, seed, negative_prompt and num_inference_steps.
    # batch_size and guidance_scale are Kolors' only, cfg Qwen-Image's: one call per picture.
    return ModelSpec(
        ModelInfo(
            id=model_id,
            label=model_id,
            sizes=DOCUMENTED_SIZES,
            supports_steps=True,
            max_seed=SILICONFLOW_MAX_SEED,
        ),
        steps=STEPS,
    )


SILICONFLOW_MODELS = {
    KOLORS: ModelSpec(
        ModelInfo(
            id=KOLORS,
            label="Kolors",
            sizes=KOLORS_SIZES,
            max_images=4,
            supports_steps=True,
            supports_guidance=True,
            max_seed=SILICONFLOW_MAX_SEED,
        ),
        per_call=4,  # batch_size 1–4
        guidance=(0.0, 20.0),
        steps=STEPS,
    ),
    QWEN_IMAGE: ModelSpec(
        ModelInfo(
            id=QWEN_IMAGE,
            label="Qwen-Image",
            sizes=QWEN_IMAGE_SIZES,
            max_images=4,
            supports_steps=True,
            supports_guidance=True,
            max_seed=SILICONFLOW_MAX_SEED,
        ),
        guidance=(0.1, 20.0),
        guidance_field="cfg",
        steps=STEPS,
    ),
}

# Offered when SILICONFLOW_MODELS is unset: the two text-to-image models the page describes.
DEFAULT_MODELS = (KOLORS, QWEN_IMAGE)

# --- the errors ---------------------------------------------------------------------------


class SiliconFlowCode(NamedTuple):
    """One row of SiliconFlow's errors. A row names the body's numeric `code`, or else an HTTP
    status, with words of the message that tell a status's meanings apart; the first row that
    fits wins, so a code's row comes before its status's."""

    code: int | None
    status: int | None
    key: str
    kind: Kind
    words: tuple[str, ...] = ()


REQUEST, ACCOUNT, CONTENT, TRANSIENT = Kind.REQUEST, Kind.ACCOUNT, Kind.CONTENT, Kind.TRANSIENT
BALANCE_WORDS = ("balance", "insufficient", "余额")
MODERATION_WORDS = ("sensitive", "moderation", "inappropriate", "敏感", "违规")

SILICONFLOW_CODES: tuple[SiliconFlowCode, ...] = (
    SiliconFlowCode(20012, None, "model_not_found", ACCOUNT),  # 400 "Model does not exist."
    SiliconFlowCode(50505, None, "provider_unavailable", TRANSIENT),  # 503 "Model service overloaded."
    # Codes seen in the vendor's answers, though not on its error page:
    SiliconFlowCode(30001, None, "quota_exhausted", ACCOUNT),  # 402/403 "your account balance is insufficient"
    SiliconFlowCode(30003, None, "permission_denied", ACCOUNT),  # 403 the model is disabled for the account
    SiliconFlowCode(30014, None, "authentication_failed", ACCOUNT),  # 401 "Token is invalid."
    # The statuses of the error page. 400: a parameter, named in the message; no code is
    # documented for moderation or for a balance, so their wording tells them apart.
    SiliconFlowCode(None, 400, "quota_exhausted", ACCOUNT, BALANCE_WORDS),
    SiliconFlowCode(None, 400, "content_rejected", CONTENT, MODERATION_WORDS),
    SiliconFlowCode(None, 400, "invalid_request", REQUEST),
    SiliconFlowCode(None, 401, "authentication_failed", ACCOUNT),  # the API key
    SiliconFlowCode(None, 402, "quota_exhausted", ACCOUNT),
    # 403: "the balance is insufficient, or the permission: most often the model needs the
    # account's real-name verification"
    SiliconFlowCode(None, 403, "quota_exhausted", ACCOUNT, BALANCE_WORDS),
    SiliconFlowCode(None, 403, "permission_denied.http_403", ACCOUNT),
    SiliconFlowCode(None, 404, "model_not_found", ACCOUNT),  # a JSON 404; a bare one is a wrong base URL
    SiliconFlowCode(None, 429, "rate_limited", TRANSIENT),  # RPM / RPD / TPM / TPD / IPM / IPD, named in the message
    SiliconFlowCode(None, 500, "provider_unavailable", TRANSIENT),  # an unknown error
    SiliconFlowCode(None, 503, "provider_unavailable", TRANSIENT),  # high load: try again later
    SiliconFlowCode(None, 504, "provider_unavailable", TRANSIENT),
)


def siliconflow_code(status: int, code: Any, message: str = "") -> SiliconFlowCode | None:
    wording = message.lower()
    for row in SILICONFLOW_CODES:
        if row.code is not None:
            if row.code == code:
                return row
        elif row.status == status and (not row.words or any(word in wording for word in row.words)):
            return row
    return None


def _classify_siliconflow(status: int, body: Any) -> tuple[str, str]:
    if isinstance(body, dict):
        # {"code": 20012, "message": "...", "data": null}; an OpenAI-style {"error": {...}} too.
        code, message = body.get("code"), body.get("message") or error_object(body).get("message")
    else:
        code, message = None, body if isinstance(body, str) else ""  # "Invalid token"
    code = code if isinstance(code, int) and not isinstance(code, bool) else None
    message = short_detail(message)
    row = siliconflow_code(status, code, message)
    return (row.key if row else by_status(status)), message


FLAVOR = Flavor(
    name="siliconflow",
    label="SiliconFlow",
    known_models=SILICONFLOW_MODELS,
    default_models=DEFAULT_MODELS,
    generic_model=_siliconflow_generic,
    classify=_classify_siliconflow,
    size_field="image_size",
    count_field="batch_size",
    results_key="images",
    request_id_header="x-siliconcloud-trace-id",
    # The account's text-to-image models, so the catalogue can name the ones it no longer has.
    check_path="/models?type=image&sub_type=text-to-image",
    resend_after_read_timeout=False,  # every call is a paid generation
)
