"""OpenAI-style image APIs: OpenAI, VolcEngine Ark (Seedream) and SiliconFlow.

All three take POST {BASE_URL}/images/generations with a Bearer key and a JSON body and
answer synchronously. They differ in field names, in how many images one call makes, in
seeds, in how results come back and in their error bodies (docs/reference/providers.md §2, §4,
§5, §7); each service's models, error table and dialect are in its module under flavors/.

One class serves all three. The registry makes one instance per service ("openai", "ark",
"siliconflow"); the instance's name picks the flavour, and its FLAVOR variable may name
another one, so an operator can point a compatible gateway at one of these dialects.
"""

from __future__ import annotations

import base64
import binascii
import logging
import random
from dataclasses import replace
from typing import Any

import requests
from django.conf import settings

from ..reasons import Reason
from . import http
from .base import (
    ConfiguredProvider,
    GeneratedImage,
    GenerationRequest,
    ModelInfo,
    ModelListing,
    ProgressCallback,
    ProviderConfig,
    guidance_range_error,
    steps_range_error,
)
from .errors import MESSAGES, PermanentProviderError, ProviderError, TransientProviderError, error_for
from .flavors import ModelSpec, ark, openai, siliconflow

logger = logging.getLogger(__name__)

FLAVORS = {flavor.name: flavor for flavor in (openai.FLAVOR, ark.FLAVOR, siliconflow.FLAVOR)}


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

    @property
    def timeout(self) -> tuple[float, float]:
        """<PREFIX>TIMEOUT_SECONDS, else the flavour's own read timeout (OpenAI's SDK waits 600 s)."""
        default = self.flavor.timeout_seconds or self.DEFAULT_TIMEOUT_SECONDS
        return (self.CONNECT_TIMEOUT_SECONDS, float(self.config.get("TIMEOUT_SECONDS", default)))

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
            resend_safe=self.flavor.resend_after_read_timeout,
            headers=self._headers(),
            json=self._body(spec, request, count, seed),
        )
        request_id = response.headers.get(self.flavor.request_id_header, "")
        body = http.json_body(response)
        if response.status_code != 200 or (isinstance(body, dict) and body.get("error")):
            raise self._answer_error(response, body, request_id, spec)
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
        headers = {"Authorization": f"Bearer {self.config.get('API_KEY')}", "Accept": "application/json"}
        for key, header in self.flavor.setting_headers:
            value = str(self.config.get(key, "")).strip()
            if value:
                headers[header] = value
        return headers

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
        for name, accepted in spec.options.items():
            value = str(self.config.get(name.upper(), "")).strip()
            if value in accepted:
                body[name] = value
            elif value:
                logger.warning(
                    "%s%s=%s is not a value %s takes; not sent",
                    self.config.env_prefix,
                    name.upper(),
                    value,
                    spec.info.id,
                )
        return body

    def _answer_error(
        self, response: requests.Response, body: Any, request_id: str, spec: ModelSpec | None = None
    ) -> ProviderError:
        """The error for a refused call, with the answer's Retry-After and, for a vendor that
        sends one, its own x-should-retry verdict."""
        return self._error(
            response.status_code,
            body,
            request_id,
            retry_after=http.retry_after(response),
            should_retry=http.should_retry(response) if self.flavor.obeys_should_retry else None,
            spec=spec,
        )

    def _error(
        self,
        status: int,
        body: Any,
        request_id: str,
        *,
        retry_after: float | None = None,
        should_retry: bool | None = None,
        spec: ModelSpec | None = None,
    ) -> ProviderError:
        """`retry_after`: the answer's Retry-After, kept on a transient error (429, 503).
        `should_retry`: the server's verdict (x-should-retry), which wins over the status and the
        error table either way, as in OpenAI's SDK. `spec`: the model asked for; "model not found"
        for one its flavour records as shut down is told as a retirement."""
        if 300 <= status < 400:
            error = http.error_for_status(status, request_id=request_id)
        elif status == 404 and not isinstance(body, dict):
            # Not the vendor's JSON error for an unknown model: the path itself is wrong.
            error = _provider_error("provider_error.no_such_path", request_id)
        else:
            key, detail = self.flavor.classify(status, body)
            if key == "provider_error" and not detail and status == 200:
                key = "provider_error.unreadable"
            if key == "model_not_found" and spec is not None and spec.is_shut_down():
                key = "model_retired"
            error = _provider_error(key, request_id, detail, retry_after=retry_after)
        if should_retry is None or should_retry == error.transient:
            return error
        if should_retry:
            return TransientProviderError(error.code, error.reason, request_id=request_id, retry_after=retry_after)
        return PermanentProviderError(error.code, error.reason, request_id=request_id)

    def check(self) -> ModelListing:
        """List the models (free): proves the base URL, the network path and the key, and tells
        the catalogue which models the service offers now."""
        if not self.flavor.check_path:
            return None  # no free listing is known; a generation would cost money
        # A listing answers in seconds: no need to wait as long as for a picture.
        connect, read = self.timeout
        response = http.send(
            "GET",
            f"{self.base_url}{self.flavor.check_path}",
            timeout=(connect, min(read, self.DEFAULT_TIMEOUT_SECONDS)),
            headers=self._headers(),
        )
        body = http.json_body(response)
        if response.status_code == 200:
            listing = self.flavor.read_listing(body)
            if listing is None:
                return None
            return listing | {model_id for model_id in self._model_ids() if not self.flavor.listing_judges(model_id)}
        if response.status_code == 404 and self.flavor.listing_optional:
            return None
        request_id = response.headers.get(self.flavor.request_id_header, "")
        raise self._answer_error(response, body, request_id)


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


def _provider_error(key: str, request_id: str, detail: str = "", *, retry_after: float | None = None) -> ProviderError:
    return error_for(key, detail=detail, request_id=request_id, retry_after=retry_after)
