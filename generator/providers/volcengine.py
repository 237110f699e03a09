"""VolcEngine visual API (火山引擎 视觉智能, the 即梦 "CV" models), over plain HTTPS.

Every call is a signed POST to `/?Action=<X>&Version=2022-08-31` with a JSON body whose
`req_key` names the model. The legacy 2.x models answer in one call (CVProcess); the Jimeng
3.x/4.x models (and req_keys we do not know) run as vendor jobs: submitted once
(CVSync2AsyncSubmitTask) and then looked at in short steps (CVSync2AsyncGetResult) by the
scheduler, or polled by generate() for direct callers. One call or job makes one picture,
so N pictures are N calls or jobs (with seeds seed, seed+1, … where the model takes a seed).

Sources: the developers' notes in docs/reference/ (providers.md §1, provider-audit.md §5,
volc_signer_test_vector.json) and the vendor's pages, cited where each fact is used:
the Jimeng image pages volcengine.com/docs/85621/2275082 (4.6), /1817045 (4.0), /1756900 (3.1),
and the OpenAPI common error codes volcengine.com/docs/6369/68677.

No SDK at run time: the official `volcengine` package is a process-wide singleton with
fixed timeouts and unreadable errors. `sign_request` below reproduces its SignerV4 byte
for byte (tests compare the two).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import math
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

import requests
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from ..reasons import with_detail
from . import http
from .base import (
    ConfiguredProvider,
    GeneratedImage,
    GenerationRequest,
    JobCheck,
    JobState,
    ModelInfo,
    ModelListing,
    ProgressCallback,
    SaveJob,
)
from .errors import (
    MESSAGES,
    Kind,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
    code_of,
    error_for,
)

logger = logging.getLogger(__name__)

API_VERSION = "2022-08-31"
# CVCancelTask exists only in this later version (SDK api_info table, providers.md §1.1).
CANCEL_VERSION = "2024-06-06"
SUCCESS = 10000
ALGORITHM = "HMAC-SHA256"
# The models that take a seed document it as an int, -1 for random (e.g. /1756900); no upper
# bound is published (UNCONFIRMED), and a non-negative int32 is accepted by every sample seen.
# No response echoes the seed used, so we always send one.
MAX_SEED = 2**31 - 1
# The calls that make (and bill) pictures. A read timeout on one of them is not resent: the
# vendor may have made the pictures although its answer never arrived (http.send, resend_safe).
PAID_ACTIONS = frozenset({"CVProcess", "CVSync2AsyncSubmitTask"})

# --- signing (providers.md §1.2) --------------------------------------------------------

# Headers that are signed besides every "X-…" one (names compared case-insensitively).
_SIGNED_NAMES = ("content-type", "content-md5", "host")
# The signer computes these itself; a caller's copy must not be signed twice.
_COMPUTED_NAMES = ("x-date", "x-content-sha256", "authorization")


def sign_request(
    method: str,
    host: str,
    path: str,
    query: Mapping[str, object],
    headers: Mapping[str, str],
    body: bytes | str,
    access_key: str,
    secret_key: str,
    region: str,
    service: str,
    x_date: str,
) -> dict[str, str]:
    """The headers to add to a request so VolcEngine accepts it: X-Date, X-Content-Sha256
    and Authorization. `body` must be exactly the bytes that will be sent.
    """
    content_sha256 = hashlib.sha256(body.encode() if isinstance(body, str) else body).hexdigest()
    to_sign = {name: value for name, value in headers.items() if name.lower() not in _COMPUTED_NAMES}
    if not any(name.lower() == "host" for name in to_sign):
        to_sign["Host"] = host
    to_sign |= {"X-Date": x_date, "X-Content-Sha256": content_sha256}
    signed = signed_headers(to_sign)
    scope = credential_scope(x_date, region, service)
    canonical = canonical_request(method, path, query, signed, content_sha256)
    key = signing_key(secret_key, x_date[:8], region, service)
    signature = hmac.new(key, string_to_sign(x_date, scope, canonical).encode(), hashlib.sha256).hexdigest()
    authorization = (
        f"{ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={';'.join(signed)}, Signature={signature}"
    )
    return {"X-Date": x_date, "X-Content-Sha256": content_sha256, "Authorization": authorization}


def signed_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The signed subset, lower-cased names in sorted order, trimmed values."""
    chosen = {}
    for name, value in headers.items():
        lowered = name.lower()
        if lowered in _SIGNED_NAMES or lowered.startswith("x-"):
            chosen[lowered] = str(value).strip()
    if "host" in chosen:
        # The SDK signs a default port as if it were absent; so must we.
        chosen["host"] = chosen["host"].removesuffix(":80").removesuffix(":443")
    return dict(sorted(chosen.items()))


def canonical_query(query: Mapping[str, object]) -> str:
    """Keys in sorted order, keys and values escaped with only -_.~ left as they are."""
    pairs = []
    for key in sorted(query):
        value = query[key]
        values = value if isinstance(value, list | tuple) else [value]
        pairs += [f"{_escape(key)}={_escape(str(item))}" for item in values]
    return "&".join(pairs)


def _escape(text: str) -> str:
    return quote(text, safe="-_.~")


def canonical_request(
    method: str, path: str, query: Mapping[str, object], signed: Mapping[str, str], content_sha256: str
) -> str:
    uri = quote(path or "/", safe="/")
    header_block = "".join(f"{name}:{value}\n" for name, value in signed.items())  # ends in \n: an empty line follows
    return "\n".join([method.upper(), uri, canonical_query(query), header_block, ";".join(signed), content_sha256])


def credential_scope(x_date: str, region: str, service: str) -> str:
    return f"{x_date[:8]}/{region}/{service}/request"


def string_to_sign(x_date: str, scope: str, canonical: str) -> str:
    return "\n".join([ALGORITHM, x_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])


def signing_key(secret_key: str, short_date: str, region: str, service: str) -> bytes:
    # Unlike AWS SigV4 the secret is used as is, with no "AWS4" prefix.
    key = secret_key.encode()
    for part in (short_date, region, service, "request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def x_date_now() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


# --- models (providers.md §1.3, and the vendor's page for each family) ------------------------


@dataclass(frozen=True)
class VolcModel:
    info: ModelInfo
    asynchronous: bool  # CVSync2AsyncSubmitTask + GetResult rather than CVProcess
    fixed_fields: dict = field(default_factory=dict)  # sent unchanged with every job


SIZE_STEP = 8  # ModelInfo's size_multiple


def area_bounded(
    req_key: str, label: str, *, min_pixels: int, max_pixels: int, max_ratio: float, supports_seed: bool
) -> ModelInfo:
    """A model bounded by area and shape, not by side. The side limits only follow from those:
    the longest side of a max_ratio:1 picture of at most max_pixels, the shortest of one of at
    least min_pixels, both with sides in multiples of SIZE_STEP."""

    def fits_longest(side: int) -> bool:  # with the narrowest other side the ratio allows
        return side * (math.ceil(side / max_ratio / SIZE_STEP) * SIZE_STEP) <= max_pixels

    def fits_shortest(side: int) -> bool:  # with the longest other side the ratio allows
        return side * (math.floor(side * max_ratio / SIZE_STEP) * SIZE_STEP) >= min_pixels

    longest = math.isqrt(int(max_pixels * max_ratio)) // SIZE_STEP * SIZE_STEP
    while not fits_longest(longest):
        longest -= SIZE_STEP
    shortest = math.ceil(math.sqrt(min_pixels / max_ratio) / SIZE_STEP) * SIZE_STEP
    while not fits_shortest(shortest):
        shortest += SIZE_STEP
    return ModelInfo(
        id=req_key,
        label=label,
        min_size=shortest,
        max_size=longest,
        min_pixels=min_pixels,
        max_pixels=max_pixels,
        max_aspect_ratio=max_ratio,
        supports_negative_prompt=False,
        supports_seed=supports_seed,
        max_seed=MAX_SEED,
    )


def jimeng_4x(req_key: str, label: str) -> VolcModel:
    """Jimeng 4.0 (/1817045) and 4.6 (/2275082), both Seedream 4.0 based: width×height in
    [1024², 4096²] with width/height in [min_ratio, max_ratio], 1/3 and 3 unless sent otherwise;
    no seed field; `scale` weighs the prompt against input images (0–1 on 4.0, 1–100 on 4.6), so
    it is no guidance scale for text alone. Without force_single a job may return up to 15
    pictures, each billed."""
    info = area_bounded(
        req_key, label, min_pixels=1024 * 1024, max_pixels=4096 * 4096, max_ratio=3.0, supports_seed=False
    )
    return VolcModel(info, asynchronous=True, fixed_fields={"force_single": True})


def jimeng_3x(req_key: str, label: str) -> VolcModel:
    """Jimeng text-to-image 3.1 (/1756900): width×height in [512², 2048²], aspect ratio 1:3 to
    3:1, default 1328×1328; `seed` (-1 random) and `use_pre_llm` (prompt rewriting, on by
    default). No steps or guidance. The 3.0 page was not in the stored copies; third-party
    schemas for jimeng_t2i_v30 give the same fields and limits."""
    info = area_bounded(req_key, label, min_pixels=512 * 512, max_pixels=2048 * 2048, max_ratio=3.0, supports_seed=True)
    return VolcModel(info, asynchronous=True)


def legacy_2x(req_key: str, label: str, fixed_fields: dict, *, tunable: bool, asynchronous: bool) -> VolcModel:
    """The older 2.x keys (general 2.0 Pro/2.1, docs/6791/1339374 and /1359424; Jimeng 2.1):
    sides 256–768 (2.1's own page is not stored: UNCONFIRMED, like the ddim_steps and scale
    ranges, which no stored page states). `use_sr` would double width and height; the picture
    should have the size asked for."""
    info = ModelInfo(
        id=req_key,
        label=label,
        min_size=256,
        max_size=768,
        supports_negative_prompt=False,
        supports_steps=tunable,
        supports_guidance=tunable,
        max_seed=MAX_SEED,
    )
    return VolcModel(info, asynchronous=asynchronous, fixed_fields={**fixed_fields, "use_sr": False})


KNOWN_MODELS: dict[str, VolcModel] = {
    model.info.id: model
    for model in (
        jimeng_4x("jimeng_seedream46_cvtob", "Jimeng 4.6 (即梦4.6)"),
        jimeng_4x("jimeng_t2i_v40", "Jimeng 4.0 (即梦4.0)"),
        jimeng_3x("jimeng_t2i_v31", "Jimeng 3.1 (即梦3.1)"),
        jimeng_3x("jimeng_t2i_v30", "Jimeng 3.0 (即梦3.0)"),
        legacy_2x("jimeng_high_aes_general_v21_L", "Jimeng 2.1 (即梦2.1)", {}, tunable=False, asynchronous=False),
        legacy_2x(
            "high_aes_general_v21_L",
            "General 2.1 (通用2.1)",
            {"model_version": "general_v2.1_L", "req_schedule_conf": "general_v20_9B_pe"},
            tunable=True,
            asynchronous=False,
        ),
        legacy_2x(
            "high_aes_general_v20_L",
            "General 2.0 Pro (通用2.0 Pro)",
            {"model_version": "general_v2.0_L", "req_schedule_conf": "general_v20_9B_rephraser"},
            tunable=True,
            asynchronous=False,
        ),
    )
}
# The image models the Jimeng product sells now (its API overview, volcengine.com/docs/85621/1544716):
# 4.6, 4.0 and 3.1, newest first. Each must be activated for the account on its own.
DEFAULT_MODELS = ("jimeng_seedream46_cvtob", "jimeng_t2i_v40", "jimeng_t2i_v31")

_JIMENG_3X_KEY = re.compile(r"^jimeng_t2i_v3\d")
_LEGACY_2X_KEY = re.compile(r"high_aes_general_v2\d")


def generic_model(req_key: str) -> VolcModel:
    """An operator-listed req_key we have no entry for gets the documented limits of the
    family its name belongs to: jimeng_t2i_v3* the 3.x ones, *high_aes_general_v2* the 2.x
    ones (as a job: the async pair serves those too, providers.md §1.3), and any other key
    the current 4.x family's, force_single included, so a new key cannot bill 15 pictures."""
    if _JIMENG_3X_KEY.match(req_key):
        return jimeng_3x(req_key, req_key)
    if _LEGACY_2X_KEY.search(req_key):
        return legacy_2x(req_key, req_key, {}, tunable=False, asynchronous=True)
    return jimeng_4x(req_key, req_key)


# --- errors (providers.md §1.5, provider-audit.md §5) -----------------------------------------

# Where each entry of ERROR_TABLE comes from.
JIMENG_TABLE = "业务错误码 table on the Jimeng image pages: volcengine.com/docs/85621/2275082, /1817045, /1756900"
OPENAPI_TABLE = "OpenAPI 公共错误码: volcengine.com/docs/6369/68677 (the gateway's ResponseMetadata.Error.Code)"
JIMENG_EXAMPLE = "error example on volcengine.com/docs/85621/1817045 and /2275082"
# The visual API's common table (通用返回字段及错误码, volcengine.com/docs/6444/69728) was not in
# any stored copy; what 50400 means comes from the vendor's own repository.
ACCESS_DENIED_REPORT = (
    "volcengine/volc-sdk-python#39: 50400 'Access Denied: Internal Error' (HTTP 401) for keys without the "
    "service, or a req_key the account has not activated"
)


@dataclass(frozen=True)
class VendorError:
    """What one vendor code means to Atelier."""

    kind: Kind  # who must act: kept equal to the kind of the error it makes (tests check)
    key: str  # the MESSAGES entry it is shown with
    vendor_retry: str  # the vendor's own word on retrying: "retry", "no retry", or "" where it says none
    source: str
    message: Promise | None = None  # shown instead of MESSAGES[key]
    outcome_unknown: bool = False  # the vendor may have done the work: a paid call is not resent


BASE_URL_MESSAGE = _("The provider does not offer this API action; check the VolcEngine base URL.")

# Every documented code, service-level (the envelope's int `code`) and gateway-level
# (ResponseMetadata.Error.Code), in one table. Codes not here go by their HTTP status.
ERROR_TABLE: dict[int | str, VendorError] = {
    # --- moderation: the person can reword the prompt
    50411: VendorError(Kind.CONTENT, "content_rejected", "no retry", JIMENG_TABLE),  # input image
    50412: VendorError(Kind.CONTENT, "content_rejected", "no retry", JIMENG_TABLE),  # the prompt
    50413: VendorError(Kind.CONTENT, "content_rejected", "no retry", JIMENG_TABLE),  # sensitive or copyrighted words
    50518: VendorError(Kind.CONTENT, "content_rejected", "no retry", JIMENG_TABLE),  # copyrighted input image
    # The vendor marks 50511/50519 retryable: another sample may pass. Atelier does not retry
    # by itself (a retry of a seeded model repeats the seed, and so the refusal); the person can.
    50511: VendorError(Kind.CONTENT, "output_rejected", "retry", JIMENG_TABLE),  # the picture
    50512: VendorError(Kind.CONTENT, "output_rejected", "no retry", JIMENG_TABLE),  # text in the output
    50519: VendorError(Kind.CONTENT, "output_rejected", "retry", JIMENG_TABLE),  # copyrighted picture
    # The moderation services themselves failed; the vendor says not to retry.
    50520: VendorError(Kind.PROVIDER, "generation_failed.safety_check", "no retry", JIMENG_TABLE),
    50521: VendorError(Kind.PROVIDER, "generation_failed.safety_check", "no retry", JIMENG_TABLE),
    50522: VendorError(Kind.PROVIDER, "generation_failed.safety_check", "no retry", JIMENG_TABLE),
    # --- rate and concurrency limits
    50429: VendorError(Kind.TRANSIENT, "rate_limited", "retry", JIMENG_TABLE),  # QPS
    50430: VendorError(Kind.TRANSIENT, "rate_limited", "retry", JIMENG_TABLE),  # jobs running at once
    # --- the vendor's own failures. The image pages say "no retry", older pages "retry". A
    # refused call made nothing, so another attempt (bounded by PROVIDER_MAX_ATTEMPTS) is safe;
    # a status look that fails so is looked at again, and never leads to a second submission.
    50500: VendorError(Kind.TRANSIENT, "provider_unavailable", "no retry", JIMENG_TABLE),
    50501: VendorError(Kind.TRANSIENT, "provider_unavailable", "no retry", JIMENG_TABLE),
    # --- the request and the account
    50215: VendorError(Kind.REQUEST, "invalid_request", "", JIMENG_EXAMPLE),  # "Input invalid for this service."
    50400: VendorError(Kind.ACCOUNT, "permission_denied.service_activation", "", ACCESS_DENIED_REPORT),
    # --- the gateway
    "MissingParameter": VendorError(Kind.REQUEST, "invalid_request", "", OPENAPI_TABLE),
    "MissingRequestInfo": VendorError(Kind.REQUEST, "invalid_request", "", OPENAPI_TABLE),
    "MethodNotAllowed": VendorError(Kind.REQUEST, "invalid_request", "", OPENAPI_TABLE),
    "ServiceNotFound": VendorError(Kind.REQUEST, "invalid_request", "", OPENAPI_TABLE, BASE_URL_MESSAGE),
    "InvalidActionOrVersion": VendorError(Kind.REQUEST, "invalid_request", "", OPENAPI_TABLE, BASE_URL_MESSAGE),
    "MissingAuthenticationToken": VendorError(Kind.ACCOUNT, "authentication_failed", "", OPENAPI_TABLE),
    "MissingSignature": VendorError(Kind.ACCOUNT, "authentication_failed", "", OPENAPI_TABLE),
    "InvalidAuthorization": VendorError(Kind.ACCOUNT, "authentication_failed", "", OPENAPI_TABLE),
    "InvalidCredential": VendorError(Kind.ACCOUNT, "authentication_failed", "", OPENAPI_TABLE),
    "InvalidAccessKey": VendorError(Kind.ACCOUNT, "authentication_failed", "", OPENAPI_TABLE),
    "SignatureDoesNotMatch": VendorError(Kind.ACCOUNT, "authentication_failed", "", OPENAPI_TABLE),
    "InvalidSecretToken": VendorError(Kind.ACCOUNT, "authentication_failed", "", OPENAPI_TABLE),
    "InvalidTimestamp": VendorError(Kind.ACCOUNT, "authentication_failed.clock", "", OPENAPI_TABLE),
    "LackPolicy": VendorError(Kind.ACCOUNT, "permission_denied.service_activation", "", OPENAPI_TABLE),
    "AccessDenied": VendorError(Kind.ACCOUNT, "permission_denied.service_activation", "", OPENAPI_TABLE),
    "LackProjectPolicy": VendorError(Kind.ACCOUNT, "permission_denied.service_activation", "", OPENAPI_TABLE),
    "FlowLimitExceeded": VendorError(Kind.TRANSIENT, "rate_limited", "", OPENAPI_TABLE),
    "ServiceUnavailableTemp": VendorError(Kind.TRANSIENT, "provider_unavailable", "", OPENAPI_TABLE),
    "InternalError": VendorError(Kind.TRANSIENT, "provider_unavailable", "", OPENAPI_TABLE),
    "InternalServiceError": VendorError(Kind.TRANSIENT, "provider_unavailable", "", OPENAPI_TABLE),
    "FailToConnect": VendorError(Kind.TRANSIENT, "provider_unavailable", "", OPENAPI_TABLE),  # never reached it
    # The gateway stopped waiting for the service, which may still make the pictures.
    "InternalServiceTimeout": VendorError(
        Kind.TRANSIENT, "provider_unavailable", "", OPENAPI_TABLE, outcome_unknown=True
    ),
}
_THROTTLING_MARKERS = ("Throttl", "LimitExceeded", "TooManyRequests")  # other gateways' names
_STILL_WORKING = {"in_queue": 30, "generating": 60}  # status -> progress within one job
_GONE = {"not_found", "expired"}


def _short(text: object) -> str:
    """The vendor's own words, trimmed to something fit for one line of a page."""
    words = " ".join(str(text or "").split())
    return words if len(words) <= 160 else words[:157] + "…"


def _not_understood(request_id: str) -> PermanentProviderError:
    return PermanentProviderError("provider_error", MESSAGES["provider_error.not_understood"], request_id=request_id)


def vendor_error(
    entry: VendorError, *, detail: str = "", request_id: str = "", retry_after: float | None = None
) -> ProviderError:
    """The error one ERROR_TABLE entry stands for (the vendor's words added where safe)."""
    if entry.message is not None:
        return PermanentProviderError(code_of(entry.key), entry.message, request_id=request_id)
    return error_for(entry.key, detail=detail.rstrip("."), request_id=request_id, retry_after=retry_after)


def not_resent(error: ProviderError) -> PermanentProviderError:
    """A paid call whose outcome is unknown ends here: sending it again could pay twice."""
    return PermanentProviderError("timeout", MESSAGES["timeout.outcome_unknown"], request_id=error.request_id)


def gateway_error(
    error: Mapping, status: int, request_id: str, retry_after: float | None = None, *, paid: bool = False
) -> ProviderError:
    """The API gateway's verdict (auth, permissions, throttling): ResponseMetadata.Error."""
    code = str(error.get("Code") or "")
    entry = ERROR_TABLE.get(code)
    if entry is not None:
        found = vendor_error(entry, detail=_short(error.get("Message")), request_id=request_id, retry_after=retry_after)
        return not_resent(found) if paid and entry.outcome_unknown else found
    if status == 429 or any(marker in code for marker in _THROTTLING_MARKERS):
        return TransientProviderError(
            "rate_limited", MESSAGES["rate_limited"], request_id=request_id, retry_after=retry_after
        )
    if status >= 300:
        return status_error(status, request_id, detail=code, retry_after=retry_after, paid=paid)
    message = with_detail(MESSAGES["provider_error.not_understood"], code)
    return PermanentProviderError("provider_error", message, request_id=request_id)


def status_error(
    status: int, request_id: str, *, detail: str = "", retry_after: float | None = None, paid: bool = False
) -> ProviderError:
    """By the HTTP status alone. A 504 is a proxy that stopped waiting: the work may be done."""
    error = http.error_for_status(status, request_id=request_id, detail=detail, retry_after=retry_after)
    return not_resent(error) if paid and status == 504 else error


def service_error(
    code: object, detail: str, status: int, request_id: str, *, unknown: str, retry_after: float | None = None
) -> ProviderError:
    """A service-level failure: the envelope's `code` is not 10000."""
    entry = ERROR_TABLE.get(code) if isinstance(code, int) else None
    if entry is not None:
        return vendor_error(entry, detail=detail, request_id=request_id, retry_after=retry_after)
    if status == 429:
        return TransientProviderError(
            "rate_limited", MESSAGES["rate_limited"], request_id=request_id, retry_after=retry_after
        )
    if status >= 500:
        return TransientProviderError(
            "provider_unavailable", MESSAGES["provider_unavailable"], request_id=request_id, retry_after=retry_after
        )
    if 400 <= status < 500:
        message = with_detail(MESSAGES["invalid_request"], detail.rstrip("."))
        return PermanentProviderError("invalid_request", message, request_id=request_id)
    # The caller names the code: a polled job that failed is a failed generation, a refused call is not.
    message = with_detail(MESSAGES["generation_failed"], detail.rstrip("."))
    return PermanentProviderError(unknown, message, request_id=request_id)


@dataclass(frozen=True)
class Answer:
    """One decoded reply: the service envelope, whatever its `code`."""

    body: dict
    status: int
    retry_after: float | None = None  # the reply's Retry-After header, for a transient failure

    @property
    def code(self) -> object:
        return self.body.get("code")

    @property
    def request_id(self) -> str:
        return str(self.body.get("request_id") or "")

    @property
    def data(self) -> dict:
        data = self.body.get("data")
        return data if isinstance(data, dict) else {}

    def require_success(self, *, unknown: str = "provider_error") -> Answer:
        """Check the code before touching data: `data` is null on errors."""
        if self.code != SUCCESS:
            raise self.error(unknown=unknown)
        return self

    def error(self, *, unknown: str = "provider_error") -> ProviderError:
        """What a failing code means (only meaningful when `code` is not 10000)."""
        detail = _short(self.body.get("message"))
        return service_error(
            self.code, detail, self.status, self.request_id, unknown=unknown, retry_after=self.retry_after
        )


def read_answer(response: requests.Response, *, paid: bool = False) -> Answer:
    """The service envelope, or the error a gateway reply or an unreadable reply stands for.
    `paid`: the call makes pictures, so a reply that leaves its outcome unknown is not resent."""
    body = http.json_body(response)
    wait = http.retry_after(response)  # a 429 or 503 may say how long to stay away
    metadata = body.get("ResponseMetadata") if isinstance(body, dict) else None
    request_id = str(metadata.get("RequestId") or "") if isinstance(metadata, dict) else ""
    if isinstance(metadata, dict) and isinstance(metadata.get("Error"), dict):
        raise gateway_error(metadata["Error"], response.status_code, request_id, retry_after=wait, paid=paid)
    if not isinstance(body, dict) or "code" not in body:
        if response.status_code >= 300:
            raise status_error(response.status_code, request_id, retry_after=wait, paid=paid)
        raise _not_understood(request_id)
    if request_id and not body.get("request_id"):
        body["request_id"] = request_id
    return Answer(body=body, status=response.status_code, retry_after=wait)


def image_from(answer: Answer, seed: int | None, extra: dict | None = None) -> GeneratedImage:
    """The first picture of a successful reply: its base64 bytes when present, else its link."""
    data = answer.data
    encoded = [item for item in data.get("binary_data_base64") or [] if isinstance(item, str) and item]
    links = [item for item in data.get("image_urls") or [] if isinstance(item, str) and item]
    result = GeneratedImage(seed=seed, request_id=answer.request_id, extra=extra or {})
    if encoded:
        try:
            result.data = base64.b64decode(encoded[0], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise PermanentProviderError(
                "invalid_image", MESSAGES["invalid_image"], request_id=answer.request_id
            ) from exc
    elif links:
        result.url = links[0]  # a pre-signed link valid 1–24 h: the worker fetches it at once
    else:
        raise PermanentProviderError(
            "generation_failed", MESSAGES["generation_failed.no_picture"], request_id=answer.request_id
        )
    return result


# --- the provider -----------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    origin: str  # scheme://host[:port]
    host: str  # the Host header, signed and sent; a default port is left out
    path: str


def endpoint_for(base_url: str) -> Endpoint:
    parts = urlsplit(base_url)
    hostname = (parts.hostname or "").lower()
    if ":" in hostname:  # an IPv6 literal keeps its brackets in URLs and Host headers
        hostname = f"[{hostname}]"
    default_port = 443 if parts.scheme == "https" else 80
    host = hostname if parts.port in (None, default_port) else f"{hostname}:{parts.port}"
    return Endpoint(origin=f"{parts.scheme}://{host}", host=host, path=parts.path.rstrip("/") + "/")


def share_of(progress: ProgressCallback | None, index: int, count: int) -> Callable[[int], None]:
    """Progress within picture `index` of `count`, reported as progress of the whole call."""

    def report(percent: int) -> None:
        if progress:
            progress(int((index * 100 + percent) / count))

    return report


class VolcEngineProvider(ConfiguredProvider):
    REQUIRED = ("ACCESS_KEY", "SECRET_KEY")
    # CVProcess makes the picture inside the call: the SDK's own 30 s read timeout is too short
    # for large or tunable ones (providers.md §1.6 asks for at least 60 s).
    DEFAULT_TIMEOUT_SECONDS = 90.0
    # The job calls (submit, status, cancel) answer at once: the pages' samples took 0.04–0.5 s
    # (time_elapsed on /1817045, /2275082), so the SDK's 30 s (VisualService) is ample.
    JOB_CALL_TIMEOUT_SECONDS = 30.0
    label = "VolcEngine (Jimeng)"

    @property
    def base_url(self) -> str:
        return str(self.config.get("BASE_URL", "https://visual.volcengineapi.com")).rstrip("/")

    def models(self) -> list[ModelInfo]:
        return [self.model(req_key).info for req_key in self.model_ids()]

    def model_ids(self) -> list[str]:
        listed = [str(item).strip() for item in self.config.get("MODELS", DEFAULT_MODELS)]
        return list(dict.fromkeys(item for item in listed if item)) or list(DEFAULT_MODELS)

    def model(self, req_key: str) -> VolcModel:
        return KNOWN_MODELS.get(req_key) or generic_model(req_key)

    def check(self) -> ModelListing:
        """Prove the host answers and accepts our signature, without making a picture: ask
        for the result of a task that does not exist. The visual API lists no models, so this
        returns None. Any service-level answer will do, except one saying the account may not
        use the service (50400): that is for an administrator to fix, and so to see.
        """
        answer = self.ask("CVSync2AsyncGetResult", {"req_key": self.model_ids()[0], "task_id": "0"})
        if answer.code != SUCCESS:
            error = answer.error()
            if error.kind is Kind.ACCOUNT:
                raise error
        return None

    def generate(self, request: GenerationRequest, progress: ProgressCallback | None = None) -> list[GeneratedImage]:
        model = self.model(request.model)
        if model.asynchronous:
            return self.wait_for_job(request, progress)
        first_seed = pick_first_seed(request, model)
        results = []
        for index in range(request.num_images):
            seed = nth_seed(model, first_seed, index)
            answer = self.ask("CVProcess", {**job_fields(model, request, seed), "return_url": True})
            results.append(image_from(answer.require_success(), seed))
            share_of(progress, index, request.num_images)(100)
        return results

    # --- vendor jobs, step by step (AsyncProvider) ----------------------------------------

    def runs_as_job(self, request: GenerationRequest) -> bool:
        return self.model(request.model).asynchronous

    def submit(self, request: GenerationRequest, save: SaveJob) -> JobState:
        """One CVSync2AsyncSubmitTask per picture, each saved the moment it is accepted."""
        model = self.model(request.model)
        plan = JobPlan(req_key=model.info.id, count=request.num_images, first_seed=pick_first_seed(request, model))
        self.submit_missing(model, request, plan, save)
        return plan.as_state()

    def check_job(self, request: GenerationRequest, state: JobState, save: SaveJob) -> JobCheck:
        """Finish a submission a dead worker left short, then one CVSync2AsyncGetResult per job."""
        plan = JobPlan.from_state(state, request, self.model(request.model))
        model = self.model(plan.req_key)
        self.submit_missing(model, request, plan, save)
        looks = [self.look(plan.req_key, job) for job in plan.jobs]
        if any(look.working for look in looks):
            queued = all(look.queued for look in looks if look.working)
            return JobCheck(finished=False, progress=sum(look.progress for look in looks) // len(looks), queued=queued)
        images = [look.image for look in looks if look.image is not None]
        if not images:
            raise next(look.error for look in looks if look.error is not None)
        # The pictures that failed at the vendor are counted, not fatal, once one succeeded.
        return JobCheck(finished=True, progress=100, images=images, failed=len(looks) - len(images))

    def cancel_job(self, state: JobState) -> None:
        """Best effort: ask VolcEngine to drop each job, so an abandoned one stops holding a
        concurrency slot. UNCONFIRMED: providers.md only says CVCancelTask exists (Version
        2024-06-06, in the SDK's table); its body and answers are not documented, so every
        failure is logged and swallowed."""
        jobs = state.get("jobs") if isinstance(state, dict) else None
        req_key = str(state.get("req_key") or "") if isinstance(state, dict) else ""
        for job in jobs if isinstance(jobs, list) else []:
            task_id = str(job.get("task_id") or "") if isinstance(job, dict) else ""
            if not task_id:
                continue
            try:
                answer = self.ask("CVCancelTask", {"req_key": req_key, "task_id": task_id}, version=CANCEL_VERSION)
                logger.info("volcengine cancel task_id=%s code=%s", task_id, answer.code)
            except Exception as exc:  # best effort: nothing about a cancel may change how the task ends
                logger.info("volcengine cancel task_id=%s failed: %s", task_id, exc)

    def submit_missing(self, model: VolcModel, request: GenerationRequest, plan: JobPlan, save: SaveJob) -> None:
        """Submit the pictures the plan has no job for yet, saving after each: a worker that
        dies between two submissions leaves a state from which the next look goes on. When a
        submission fails for good, the jobs already running are canceled: the task ends."""
        while len(plan.jobs) < plan.count:
            seed = nth_seed(model, plan.first_seed, len(plan.jobs))
            try:
                submitted = self.ask("CVSync2AsyncSubmitTask", job_fields(model, request, seed))
                task_id = str(submitted.require_success().data.get("task_id") or "")
                if not task_id:
                    raise _not_understood(submitted.request_id)
            except PermanentProviderError:
                if plan.jobs:
                    self.cancel_job(plan.as_state())
                raise
            logger.info("volcengine submitted req_key=%s task_id=%s", model.info.id, task_id)
            plan.jobs.append({"task_id": task_id, "seed": seed})
            save(plan.as_state())

    def look(self, req_key: str, job: dict) -> JobLook:
        """One CVSync2AsyncGetResult. Transient failures (50429/50430, 5xx, a dropped
        connection) raise: the job is looked at again later, never submitted again."""
        task_id, seed = str(job["task_id"]), job.get("seed")
        # req_json is a JSON-encoded *string*, not an object.
        body = {"req_key": req_key, "task_id": task_id, "req_json": json.dumps({"return_url": True})}
        answer = self.ask("CVSync2AsyncGetResult", body)
        status = answer.data.get("status")
        if status in _GONE:
            raise PermanentProviderError("task_expired", MESSAGES["task_expired.retry"], request_id=answer.request_id)
        if answer.code != SUCCESS:
            # "done" means finished, not succeeded: the code tells which.
            error = answer.error(unknown="generation_failed")
            if not error.transient:
                return JobLook(progress=100, error=error)
            if status != "done":
                raise error  # the look failed, not (as far as we know) the job
            # The job itself ended in a passing failure: looking again would find the same.
            failed = with_detail(MESSAGES["generation_failed"], _short(answer.body.get("message")).rstrip("."))
            return JobLook(
                progress=100, error=PermanentProviderError("generation_failed", failed, request_id=answer.request_id)
            )
        if status in _STILL_WORKING:
            return JobLook(progress=_STILL_WORKING[status], working=True, queued=status == "in_queue")
        if status != "done":
            raise _not_understood(answer.request_id)
        try:
            return JobLook(progress=100, image=image_from(answer, seed, {"task_id": task_id}))
        except PermanentProviderError as error:
            return JobLook(progress=100, error=error)

    def wait_for_job(self, request: GenerationRequest, progress: ProgressCallback | None) -> list[GeneratedImage]:
        """submit and check_job in one call, polling, for callers that can wait. Passing
        failures of a look are sat out until the deadline; then the jobs are canceled."""
        report = progress or (lambda percent: None)
        latest: list[JobState] = []  # the last state saved
        deadline = time.monotonic() + self.poll_deadline
        try:
            latest.append(self.submit(request, latest.append))
        except TransientProviderError:
            if not latest:
                raise  # nothing was submitted
        report(10)
        reported, interval = 10, self.poll_interval
        while True:
            time.sleep(max(0.0, min(interval, deadline - time.monotonic())))
            try:
                check = self.check_job(request, latest[-1], latest.append)
            except TransientProviderError:
                check = None
            if check is not None and check.finished:
                report(100)
                return check.images
            if check is not None and check.progress > reported:
                reported = check.progress
                report(reported)
            if time.monotonic() >= deadline:
                self.cancel_job(latest[-1])
                raise TransientProviderError("timeout", MESSAGES["timeout.unfinished"])
            # Back off from ~1 s to ~3 s: long jobs need not be asked about every second.
            interval = min(interval * 1.5, self.poll_interval * 3)

    def ask(self, action: str, fields: dict, *, version: str = API_VERSION) -> Answer:
        """One call, read: its service envelope, or the error its reply stands for."""
        return read_answer(self.call(action, fields, version=version), paid=action in PAID_ACTIONS)

    def call_timeout(self, action: str) -> tuple[float, float]:
        """(connect, read) seconds for one action; <PREFIX>TIMEOUT_SECONDS, when set, for all."""
        if action == "CVProcess" or self.config.get("TIMEOUT_SECONDS") is not None:
            return self.timeout
        return (self.CONNECT_TIMEOUT_SECONDS, self.JOB_CALL_TIMEOUT_SECONDS)

    def call(self, action: str, fields: dict, *, version: str = API_VERSION) -> requests.Response:
        """One signed POST; the body sent is exactly the bytes that were hashed. A paid one
        (PAID_ACTIONS) whose answer times out is never sent again."""
        endpoint = endpoint_for(self.base_url)
        query = {"Action": action, "Version": version}
        payload = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Host": endpoint.host, "Content-Type": "application/json"}
        headers |= sign_request(
            "POST",
            endpoint.host,
            endpoint.path,
            query,
            headers,
            payload,
            access_key=str(self.config.get("ACCESS_KEY")),
            secret_key=str(self.config.get("SECRET_KEY")),
            region=str(self.config.get("REGION", "cn-north-1")),
            service=str(self.config.get("SERVICE", "cv")),
            x_date=x_date_now(),
        )
        url = f"{endpoint.origin}{quote(endpoint.path, safe='/')}?{canonical_query(query)}"
        return http.send(
            "POST",
            url,
            timeout=self.call_timeout(action),
            resend_safe=action not in PAID_ACTIONS,
            data=payload,
            headers=headers,
        )


@dataclass
class JobPlan:
    """A task's vendor jobs (its JobState): one per picture, seeds first_seed, first_seed+1, …"""

    req_key: str
    count: int  # pictures asked for: fewer saved jobs mean the submission is unfinished
    first_seed: int | None  # None for a model that takes no seed
    jobs: list[dict] = field(default_factory=list)  # {"task_id", "seed"}, in submission order

    def as_state(self) -> JobState:
        jobs = [{"task_id": job["task_id"], "seed": job["seed"]} for job in self.jobs]
        return {"req_key": self.req_key, "jobs": jobs, "count": self.count, "first_seed": self.first_seed}

    @classmethod
    def from_state(cls, state: JobState, request: GenerationRequest, model: VolcModel) -> JobPlan:
        """The saved state read back; what is missing from it comes from the request."""
        state = state if isinstance(state, dict) else {}
        saved = state.get("jobs")
        jobs: list[dict] = [
            {"task_id": str(job["task_id"]), "seed": job.get("seed")}
            for job in (saved if isinstance(saved, list) else [])
            if isinstance(job, dict) and job.get("task_id") and isinstance(job.get("seed"), int | None)
        ]
        saved_seed, count = state.get("first_seed"), state.get("count")
        first_seed: int | None
        if isinstance(saved_seed, int):
            first_seed = saved_seed
        else:
            first_seed = jobs[0]["seed"] if jobs else pick_first_seed(request, model)
        return cls(
            req_key=str(state.get("req_key") or model.info.id),
            count=count if isinstance(count, int) and count > 0 else request.num_images,
            first_seed=first_seed,
            jobs=jobs,
        )


@dataclass(frozen=True)
class JobLook:
    """What one status query said about one job: still working, a picture, or its failure."""

    progress: int  # within this job, 0–100
    working: bool = False
    queued: bool = False  # working, but not started yet (in_queue)
    image: GeneratedImage | None = None
    error: ProviderError | None = None


def pick_first_seed(request: GenerationRequest, model: VolcModel) -> int | None:
    """The first picture's seed; None for a model without one. No response echoes the seed
    used, so a random one is chosen here and recorded."""
    if not model.info.supports_seed:
        return None
    return request.seed if request.seed is not None else secrets.randbelow(model.info.max_seed + 1)


def nth_seed(model: VolcModel, first_seed: int | None, index: int) -> int | None:
    """Picture `index`'s seed: first_seed + index, wrapping at the model's maximum."""
    if first_seed is None or not model.info.supports_seed:
        return None
    return (first_seed + index) % (model.info.max_seed + 1)


def job_fields(model: VolcModel, request: GenerationRequest, seed: int | None) -> dict:
    """The body of one job. There is no negative prompt field; seed, steps and guidance go
    only to the models documented to take them (`seed`, `ddim_steps`, `scale`).
    """
    fields: dict = {"req_key": model.info.id, "prompt": request.prompt}
    if seed is not None:
        fields["seed"] = seed
    fields |= {"width": request.width, "height": request.height, **model.fixed_fields}
    if model.info.supports_steps and request.steps is not None:
        fields["ddim_steps"] = request.steps
    if model.info.supports_guidance and request.guidance_scale is not None:
        fields["scale"] = request.guidance_scale
    return fields
