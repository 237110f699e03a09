"""OpenAI-style image APIs: OpenAI, VolcEngine Ark (Seedream) and SiliconFlow.

All three take POST {BASE_URL}/images/generations with a Bearer key and a JSON body and
answer synchronously. They differ in field names, in how many images one call makes, in
seeds, in how results come back and in their error bodies (providers.md §2, §4, §5, §7).

One class serves all three. The registry makes one instance per service ("openai", "ark",
"siliconflow"); the instance's name picks the flavour, and its FLAVOR variable may name
another one, so an operator can point a compatible gateway at one of these dialects.
"""

from __future__ import annotations

import base64
import binascii
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from django.conf import settings
from django.utils.functional import Promise

from ..reasons import Reason, with_detail
from . import http
from .base import (
    ConfiguredProvider,
    GeneratedImage,
    GenerationRequest,
    ModelInfo,
    ProgressCallback,
    ProviderConfig,
    guidance_range_error,
    steps_range_error,
)
from .errors import (
    MESSAGES,
    TRANSIENT_CODES,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
    code_of,
)

logger = logging.getLogger(__name__)

# The vendor's own words are added only where they help and are safe to show: an
# authentication error, for one, can echo part of the API key.
CODES_WITH_DETAIL = frozenset({"invalid_request", "permission_denied", "model_not_found", "provider_error"})
MAX_DETAIL_CHARS = 200


@dataclass(frozen=True)
class ModelSpec:
    """A model's limits (shown by the form) plus what the request body needs for it."""

    info: ModelInfo
    per_call: int = 1  # images one call can make (n / batch_size); otherwise one call per image
    guidance: tuple[float, float] | None = None  # accepted range, when the model takes guidance
    guidance_field: str = "guidance_scale"
    steps: tuple[int, int] | None = None  # accepted num_inference_steps range
    fixed_fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Flavor:
    """What differs between the three services speaking this protocol."""

    name: str
    label: str
    known_models: dict[str, ModelSpec]
    default_models: tuple[str, ...]  # offered when MODELS is unset (mirrors config/settings.py)
    generic_model: Callable[[str], ModelSpec]  # conservative limits for a model id we do not know
    classify: Callable[[int, Any], tuple[str, str]]  # (status, body) -> (our code, vendor's message)
    size_field: str = "size"
    count_field: str = "n"
    fixed_fields: dict[str, Any] = field(default_factory=dict)
    results_key: str = "data"
    request_id_header: str = "x-request-id"
    check_path: str = ""  # a free GET that proves key and reachability; "" means none is known


# --- OpenAI (providers.md §5) -------------------------------------------------------------


def _openai_generic(model_id: str) -> ModelSpec:
    # Every OpenAI image model makes 1024x1024 and takes n=1; the response format is left
    # to the model (gpt-image models refuse the parameter, dall-e-2 defaults to links).
    return ModelSpec(
        ModelInfo(
            id=model_id,
            label=model_id,
            sizes=((1024, 1024),),
            supports_negative_prompt=False,
            supports_seed=False,
        )
    )


OPENAI_MODELS = {
    "gpt-image-1": ModelSpec(
        ModelInfo(
            id="gpt-image-1",
            label="GPT Image 1",
            sizes=((1024, 1024), (1536, 1024), (1024, 1536)),
            max_images=4,
            supports_negative_prompt=False,
            supports_seed=False,
        ),
        per_call=4,  # gpt-image-1 always answers base64: response_format must not be sent
    ),
    "dall-e-3": ModelSpec(
        ModelInfo(
            id="dall-e-3",
            label="DALL·E 3",
            sizes=((1024, 1024), (1792, 1024), (1024, 1792)),
            max_images=4,
            supports_negative_prompt=False,
            supports_seed=False,
        ),
        # n must be 1, so several images are several calls; base64 spares a download of a
        # link that expires in an hour.
        fixed_fields={"response_format": "b64_json"},
    ),
}


def _classify_openai(status: int, body: Any) -> tuple[str, str]:
    error = _error_object(body)
    code, kind, message = str(error.get("code") or ""), str(error.get("type") or ""), _text(error.get("message"))
    if code in ("content_policy_violation", "moderation_blocked"):
        return "content_rejected", message
    # 429 insufficient_quota looks like a rate limit but retrying never helps.
    if code in ("insufficient_quota", "billing_hard_limit_reached") or kind == "insufficient_quota":
        return "quota_exhausted", message
    if code == "model_not_found":
        return "model_not_found", message
    return _by_status(status), message


# --- VolcEngine Ark, Seedream (providers.md §2) -------------------------------------------

ARK_MAX_SEED = 2_147_483_647
SEEDREAM_3 = "doubao-seedream-3-0-t2i-250415"
SEEDREAM_4 = "doubao-seedream-4-0-250828"


def _ark_generic(model_id: str) -> ModelSpec:
    # An endpoint id ("ep-...") may serve Seedream 3.0 or 4.0: offer only what both accept,
    # and send neither seed nor guidance (4.0 may ignore or refuse them).
    return ModelSpec(
        ModelInfo(
            id=model_id,
            label=model_id,
            min_size=512,
            max_size=2048,
            min_pixels=1280 * 720,
            supports_negative_prompt=False,
            supports_seed=False,
        )
    )


ARK_MODELS = {
    SEEDREAM_3: ModelSpec(
        ModelInfo(
            id=SEEDREAM_3,
            label="Seedream 3.0",
            min_size=512,
            max_size=2048,
            supports_negative_prompt=False,
            supports_guidance=True,
            max_seed=ARK_MAX_SEED,
        ),
        guidance=(1.0, 10.0),
    ),
    SEEDREAM_4: ModelSpec(
        ModelInfo(
            # Bounded by area and shape: 1280x720 to 4096x4096 pixels, aspect ratio up to 16:1
            # (so the shortest side is at least 240). Whether 4.0 honours seed is unconfirmed.
            id=SEEDREAM_4,
            label="Seedream 4.0",
            min_size=240,
            max_size=4096,
            min_pixels=1280 * 720,
            max_pixels=4096 * 4096,
            max_aspect_ratio=16,
            supports_negative_prompt=False,
            supports_seed=False,
        )
    ),
}


# Ark error codes (volcengine.com/docs/82379/1299023), matched whole or as a dotted prefix.
ARK_CODES = (
    ("AuthenticationError", "authentication_failed"),
    ("AccountOverdueError", "quota_exhausted"),
    ("AccessDenied", "permission_denied"),
    ("ModelNotOpen", "permission_denied"),  # the model is not activated in the Ark console
    ("InvalidEndpointOrModel", "model_not_found"),
    ("InvalidEndpoint", "model_not_found"),  # e.g. InvalidEndpoint.ClosedEndpoint
    ("RateLimitExceeded", "rate_limited"),
    ("ServerOverloaded", "provider_unavailable"),
    ("InternalServiceError", "provider_unavailable"),
    ("InvalidParameter", "invalid_request"),
    ("MissingParameter", "invalid_request"),
)


def _classify_ark(status: int, body: Any) -> tuple[str, str]:
    error = _error_object(body)
    code, message = str(error.get("code") or ""), _text(error.get("message"))
    if code.startswith("OutputImage") and ("Sensitive" in code or "Risk" in code):
        return "output_rejected", message
    if "SensitiveContentDetected" in code or "RiskDetection" in code:
        return "content_rejected", message
    for prefix, ours in ARK_CODES:
        if code == prefix or code.startswith(prefix + "."):
            return ours, message
    return _by_status(status), message


# --- SiliconFlow (providers.md §4) --------------------------------------------------------

SILICONFLOW_MAX_SEED = 9_999_999_999


def _siliconflow_generic(model_id: str) -> ModelSpec:
    # The API takes image_size and seed for every text-to-image model; negative prompt,
    # steps and guidance vary by model, so they are not offered.
    return ModelSpec(
        ModelInfo(
            id=model_id,
            label=model_id,
            sizes=((1024, 1024),),
            supports_negative_prompt=False,
            max_seed=SILICONFLOW_MAX_SEED,
        )
    )


SILICONFLOW_MODELS = {
    "Kwai-Kolors/Kolors": ModelSpec(
        ModelInfo(
            id="Kwai-Kolors/Kolors",
            label="Kolors",
            sizes=((1024, 1024), (960, 1280), (768, 1024), (720, 1440), (720, 1280)),
            max_images=4,
            supports_steps=True,
            supports_guidance=True,
            max_seed=SILICONFLOW_MAX_SEED,
        ),
        per_call=4,
        guidance=(0.0, 20.0),
        steps=(1, 100),
    ),
    "Qwen/Qwen-Image": ModelSpec(
        ModelInfo(
            id="Qwen/Qwen-Image",
            label="Qwen-Image",
            sizes=((1328, 1328), (1664, 928), (928, 1664), (1472, 1140), (1140, 1472), (1584, 1056), (1056, 1584)),
            max_images=4,
            supports_steps=True,
            supports_guidance=True,
            max_seed=SILICONFLOW_MAX_SEED,
        ),
        guidance=(0.1, 20.0),
        guidance_field="cfg",
        steps=(1, 100),
    ),
}

# Balance and moderation errors have no documented code: recognised by their wording.
BALANCE_WORDS = ("balance", "insufficient")
MODERATION_WORDS = ("sensitive", "moderation", "inappropriate")


def _classify_siliconflow(status: int, body: Any) -> tuple[str, str]:
    body = body if isinstance(body, dict) else {}
    message = _text(body.get("message"))
    wording = message.lower()
    if body.get("code") == 20012:  # "Model does not exist"
        return "model_not_found", message
    if status in (400, 402, 403) and any(word in wording for word in BALANCE_WORDS):
        return "quota_exhausted", message
    if status == 400 and any(word in wording for word in MODERATION_WORDS):
        return "content_rejected", message
    return _by_status(status), message


FLAVORS = {
    "openai": Flavor(
        name="openai",
        label="OpenAI",
        known_models=OPENAI_MODELS,
        default_models=("gpt-image-1", "dall-e-3"),
        generic_model=_openai_generic,
        classify=_classify_openai,
        check_path="/models",
    ),
    "ark": Flavor(
        name="ark",
        label="VolcEngine Ark (Seedream)",
        known_models=ARK_MODELS,
        default_models=(SEEDREAM_3,),
        generic_model=_ark_generic,
        classify=_classify_ark,
        count_field="",  # no n: one image per call
        # watermark defaults to true (an "AI生成" mark); base64 spares downloading a link.
        fixed_fields={"response_format": "b64_json", "watermark": False},
    ),
    "siliconflow": Flavor(
        name="siliconflow",
        label="SiliconFlow",
        known_models=SILICONFLOW_MODELS,
        default_models=("Kwai-Kolors/Kolors",),
        generic_model=_siliconflow_generic,
        classify=_classify_siliconflow,
        size_field="image_size",
        count_field="batch_size",
        results_key="images",
        request_id_header="x-siliconcloud-trace-id",
        check_path="/models",
    ),
}


# --- the provider -------------------------------------------------------------------------


class OpenAICompatibleProvider(ConfiguredProvider):
    REQUIRED = ("API_KEY",)

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        self.flavor = FLAVORS[flavor_name(config)]
        if self.flavor.name == self.name:
            self.label = self.flavor.label
        else:
            self.label = f"{self.name} ({self.flavor.label}-compatible)"

    @classmethod
    def from_settings(cls, settings, name: str) -> OpenAICompatibleProvider | None:
        config = ProviderConfig.from_settings(settings, name)
        if flavor_name(config) not in FLAVORS:
            logger.error(
                "%sFLAVOR must be one of %s; the %s provider is not offered.",
                config.env_prefix,
                ", ".join(FLAVORS),
                name,
            )
            return None
        return super().from_settings(settings, name)

    # --- models ---

    def models(self) -> list[ModelInfo]:
        return [self._info(self._spec(model_id)) for model_id in self._model_ids()]

    @staticmethod
    def _info(spec: ModelSpec) -> ModelInfo:
        """The model's limits, with its guidance and steps ranges for the form to check."""
        return replace(spec.info, guidance_range=spec.guidance, steps_range=spec.steps)

    def _model_ids(self) -> list[str]:
        # The settings' default list belongs to the instance's own service: when FLAVOR
        # points this instance elsewhere and MODELS is unset, offer that flavour's defaults.
        configured = None
        if "MODELS" in self.config.explicitly_set or self.flavor.name == self.name:
            configured = self.config.get("MODELS")
        ids = [str(model_id).strip() for model_id in (configured or self.flavor.default_models)]
        return list(dict.fromkeys(model_id for model_id in ids if model_id))

    def _spec(self, model_id: str) -> ModelSpec:
        return self.flavor.known_models.get(model_id) or self.flavor.generic_model(model_id)

    # --- generation ---

    def generate(self, request: GenerationRequest, progress: ProgressCallback | None = None) -> list[GeneratedImage]:
        spec = self._spec(request.model)
        _validate(spec, request)
        first_seed = _first_seed(spec.info, request.seed)
        results: list[GeneratedImage] = []
        while len(results) < request.num_images:
            count = min(spec.per_call, request.num_images - len(results))
            seed = None if first_seed is None else (first_seed + len(results)) % (spec.info.max_seed + 1)
            results += self._call(spec, request, count, seed)
            if progress:
                progress(100 * len(results) // request.num_images)
        return results

    def _call(self, spec: ModelSpec, request: GenerationRequest, count: int, seed: int | None) -> list[GeneratedImage]:
        response = http.send(
            "POST",
            f"{self.base_url}/images/generations",
            timeout=self.timeout,
            headers=self._headers(),
            json=self._body(spec, request, count, seed),
        )
        request_id = response.headers.get(self.flavor.request_id_header, "")
        body = http.json_body(response)
        if response.status_code != 200 or (isinstance(body, dict) and body.get("error")):
            raise self._error(response.status_code, body, request_id, retry_after=http.retry_after(response))
        if not isinstance(body, dict):
            raise _provider_error("provider_error.unreadable", request_id)
        items = self._items(body, request_id)
        for item in items:
            if item.get("error"):  # one image failed (Ark multi-image); the same vocabulary applies
                raise self._error(response.status_code, {"error": item["error"]}, request_id)
        if len(items) < count:
            raise _provider_error("provider_error.too_few_images", request_id)
        seeds = _result_seeds(body, seed, count)
        return [_result(item, seed, request_id) for item, seed in zip(items[:count], seeds, strict=True)]

    def _items(self, body: dict, request_id: str) -> list[dict]:
        items = body.get(self.flavor.results_key)
        if items is None:
            items = body.get("data")  # SiliconFlow was also seen answering OpenAI-style
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise _provider_error("provider_error.unreadable", request_id)
        return items

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.get('API_KEY')}", "Accept": "application/json"}

    def _body(self, spec: ModelSpec, request: GenerationRequest, count: int, seed: int | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": spec.info.id,
            "prompt": request.prompt,
            self.flavor.size_field: f"{request.width}x{request.height}",
            **self.flavor.fixed_fields,
            **spec.fixed_fields,
        }
        if spec.per_call > 1 and self.flavor.count_field:
            body[self.flavor.count_field] = count
        if seed is not None:
            body["seed"] = seed
        if request.negative_prompt and spec.info.supports_negative_prompt:
            body["negative_prompt"] = request.negative_prompt
        if spec.steps and request.steps is not None:
            body["num_inference_steps"] = request.steps
        if spec.guidance and request.guidance_scale is not None:
            body[spec.guidance_field] = request.guidance_scale
        return body

    def _error(self, status: int, body: Any, request_id: str, *, retry_after: float | None = None) -> ProviderError:
        """`retry_after`: the answer's Retry-After header, kept on a transient error (429, 503)."""
        if 300 <= status < 400:
            return http.error_for_status(status, request_id=request_id)
        if status == 404 and not isinstance(body, dict):
            # Not the vendor's JSON error for an unknown model: the path itself is wrong.
            return _provider_error("provider_error.no_such_path", request_id)
        key, detail = self.flavor.classify(status, body)
        if key == "provider_error" and not detail and status == 200:
            key = "provider_error.unreadable"
        return _provider_error(key, request_id, detail, retry_after=retry_after)

    def check(self) -> None:
        """List the models (free): proves the base URL, the network path and the key."""
        if not self.flavor.check_path:
            return  # Ark documents no free endpoint; a generation would cost money
        response = http.send(
            "GET", f"{self.base_url}{self.flavor.check_path}", timeout=self.timeout, headers=self._headers()
        )
        if response.status_code == 200:
            return
        request_id = response.headers.get(self.flavor.request_id_header, "")
        raise self._error(
            response.status_code, http.json_body(response), request_id, retry_after=http.retry_after(response)
        )


def flavor_name(config: ProviderConfig) -> str:
    default = config.name if config.name in FLAVORS else "openai"
    return str(config.get("FLAVOR", default)).strip().lower()


# --- helpers ------------------------------------------------------------------------------


def _validate(spec: ModelSpec, request: GenerationRequest) -> None:
    """The form checks most of this; a request from elsewhere must not waste a paid call."""
    info = spec.info
    problem = info.size_reason(request.width, request.height)
    if problem is None and not 1 <= request.num_images <= info.max_images:
        problem = Reason(MESSAGES["invalid_request.image_count"], {"model": info.label, "max": info.max_images})
    if problem is None and spec.guidance and request.guidance_scale is not None:
        low, high = spec.guidance
        if not low <= request.guidance_scale <= high:
            problem = guidance_range_error(info.label, low, high)
    if problem is None and spec.steps and request.steps is not None:
        low, high = spec.steps
        if not low <= request.steps <= high:
            problem = steps_range_error(info.label, low, high)
    if problem:
        raise PermanentProviderError("invalid_request", problem)


def _first_seed(info: ModelInfo, requested: int | None) -> int | None:
    """The seed to send for the first image; picked here when the person left it random."""
    if not info.supports_seed:
        return None
    if requested is None or requested < 0:
        # Ark does not echo the seed it used, so choose it ourselves and record it.
        return random.SystemRandom().randint(0, info.max_seed)
    return requested % (info.max_seed + 1)


def _result_seeds(body: dict, sent: int | None, count: int) -> list[int | None]:
    """The seed of each image of one call.

    A SiliconFlow batch reports one seed; whether the other images of the batch used
    seed+1, ... is not documented, so only the first image records a seed.
    """
    returned = body.get("seed")
    first = returned if isinstance(returned, int) and not isinstance(returned, bool) else sent
    return [first] + [None] * (count - 1)


def _result(item: dict, seed: int | None, request_id: str) -> GeneratedImage:
    encoded = item.get("b64_json")
    if isinstance(encoded, str) and encoded:
        return GeneratedImage(data=_decode(encoded, request_id), seed=seed, request_id=request_id)
    url = item.get("url")
    if isinstance(url, str) and url:
        # Downloaded by the service at once, through the SSRF guard (links expire in 1-24 h).
        return GeneratedImage(url=url, seed=seed, request_id=request_id)
    raise _provider_error("provider_error.unreadable", request_id)


def _decode(encoded: str, request_id: str) -> bytes:
    max_bytes = settings.MAX_IMAGE_BYTES
    if len(encoded) * 3 // 4 > max_bytes:  # the same cap as a downloaded image
        raise PermanentProviderError(
            "image_too_large",
            MESSAGES["image_too_large"],
            params={"limit": max_bytes // (1024 * 1024)},
            request_id=request_id,
        )
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _provider_error("provider_error.unreadable", request_id) from exc


def _error_object(body: Any) -> dict:
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _text(value: Any) -> str:
    """A vendor message, made short and single-line for people to read."""
    text = " ".join(str(value or "").split())
    return text if len(text) <= MAX_DETAIL_CHARS else text[: MAX_DETAIL_CHARS - 1] + "…"


def _by_status(status: int) -> str:
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


def _provider_error(key: str, request_id: str, detail: str = "", *, retry_after: float | None = None) -> ProviderError:
    """The error for a catalogue key; the vendor's words are added only where they are safe."""
    code = code_of(key)
    message: Promise | Reason = MESSAGES[key]
    if code in CODES_WITH_DETAIL:
        message = with_detail(message, detail)
    if code in TRANSIENT_CODES:
        return TransientProviderError(code, message, request_id=request_id, retry_after=retry_after)
    return PermanentProviderError(code, message, request_id=request_id)
