"""Alibaba Cloud DashScope (Model Studio): Wan and Qwen-Image text-to-image.

Wire facts: docs/reference/providers.md §3, checked against the vendor's current pages and
the official SDK (PyPI `dashscope` 2.0.2):
- Models, sizes, counts and seeds: the Wan text-to-image V2 API reference
  (alibabacloud.com/help/en/model-studio/text-to-image-v2-api-reference; docs.qwencloud.com
  api-reference/image-generation/wan-text-to-image-v2) and the Qwen text-to-image API reference
  (alibabacloud.com/help/en/model-studio/qwen-image-api; docs.qwencloud.com
  api-reference/image-generation/qwen-text-to-image-async). No model takes steps or guidance.
- Errors: the vendor's error-code page (alibabacloud.com/help/en/model-studio/error-code),
  sorted into ERROR_TABLE below.
- Endpoints per region: alibabacloud.com/help/en/model-studio/regions and the SDK's
  `dashscope/v2/_config.py` (REGION_BASE_URLS below notes where the two differ).

Three ways in, by model (Route):
- Wan 2.5 and older, qwen-image and qwen-image-plus: an asynchronous job on
  /services/aigc/text2image/image-synthesis (`input.prompt`; results in `output.results[].url`).
- Wan 2.6: an asynchronous job on /services/aigc/image-generation/generation (`input.messages`;
  results in `output.choices[].message.content[].image`).
- qwen-image-max and qwen-image-2.0: one synchronous call to
  /services/aigc/multimodal-generation/generation (the async route takes only qwen-image and
  qwen-image-plus).
A job is submitted once (submit) and looked at in short steps (check_job) by the scheduler;
generate() does both in one call, polling, for direct callers. Every paid POST is sent with
resend_safe=False: a read timeout fails for good and says the request was not sent again.
Results are signed OSS links that expire after 24 h; they are downloaded at once.

Choices where the vendor's documentation is silent:
- One job makes all n pictures. DashScope returns no seeds, so only a single picture
  records the seed we sent; for n > 1 no per-picture seed is claimed.
- Partial results are kept: when some of a job's results failed (or fewer came back than
  asked for), the pictures that succeeded are stored and the task notes how many failed.
  Only a job with no picture at all fails the task.
- prompt_extend is off unless DASHSCOPE_PROMPT_EXTEND is set: the person's prompt is used
  as written, and the LLM rewrite would add seconds to every job.
- No size need be a multiple of anything (size_multiple=1): the vendor sets no such rule, and
  its own example for Wan 2.5 is 768*2700.
"""

from __future__ import annotations

import logging
import random
import re
import time
from dataclasses import dataclass

import requests
from django.utils.translation import gettext_lazy as _

from ..reasons import Reason, with_detail
from .base import (
    ConfiguredProvider,
    GeneratedImage,
    GenerationRequest,
    JobCheck,
    JobState,
    ModelInfo,
    ModelListing,
    ProgressCallback,
    ProviderConfig,
    SaveJob,
)
from .errors import (
    MESSAGES,
    TRANSIENT_CODES,
    Kind,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
    code_of,
)
from .http import error_for_status, json_body, retry_after, send

logger = logging.getLogger(__name__)

# Every model documents seeds in [0, 2147483647].
MAX_SEED = 2_147_483_647
# The vendor's current recommendations (Model Studio text-to-image overview, 2026): the newest Wan,
# the fast and cheap Wan 2.2, and Qwen-Image Plus for text in pictures.
DEFAULT_MODELS = ("wan2.6-t2i", "wan2.2-t2i-flash", "qwen-image-plus")
# Any id works for check(): only the key and the network path are being tested.
PROBE_TASK_ID = "00000000-0000-0000-0000-000000000000"

# Polling follows the SDK's wait(): start short, grow, never wait more than 5 s between looks
# (the vendor suggests looking every 5-10 s).
MAX_POLL_INTERVAL = 5.0
POLL_GROWTH = 1.5
PROGRESS_BY_STATUS = {"PENDING": 20, "SUSPENDED": 20, "RUNNING": 50}
FINAL_STATUSES = ("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN")

# A synchronous call waits for the picture itself (the vendor puts generation at 1-2 minutes):
# up to 300 s, after which the vendor gives up on a request itself (error-code page,
# 500-RequestTimeOut) and which the SDK 2.0 waits by default (v2/_config.py, DEFAULT_TIMEOUT).
SYNC_TIMEOUT_SECONDS = 300.0


# --- regions ----------------------------------------------------------------------------

# DASHSCOPE_REGION -> the documented shared endpoint (DASHSCOPE_BASE_URL, when set, wins).
# The vendor's regions page names dashscope-us for Virginia; the SDK 2.0.2 (v2/_config.py,
# LEGACY_GATEWAY_HOSTS) sends us-east-1 to dashscope-intl instead. Keys are per region, so the
# documented host is used. Hong Kong's host is the SDK's (and the one secondary copies of the
# docs give). Frankfurt (eu-central-1) and Tokyo (ap-northeast-1) have only the workspace host
# {workspace}.{region}.maas.aliyuncs.com, which the SDK prefers wherever a workspace is set:
# DASHSCOPE_BASE_URL=https://{workspace}.{region}.maas.aliyuncs.com/api/v1 for those.
REGION_BASE_URLS = {
    "cn-beijing": "https://dashscope.aliyuncs.com/api/v1",
    "ap-southeast-1": "https://dashscope-intl.aliyuncs.com/api/v1",
    "us-east-1": "https://dashscope-us.aliyuncs.com/api/v1",
    "cn-hongkong": "https://cn-hongkong.dashscope.aliyuncs.com/api/v1",
}
DEFAULT_REGION = "cn-beijing"


def region_of(config: ProviderConfig) -> str:
    return str(config.get("REGION", DEFAULT_REGION)).strip().lower()


# --- routes and models ------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """Where a model's requests go and how its body is shaped."""

    path: str
    asynchronous: bool  # a job (X-DashScope-Async: enable, then GET /tasks/{id}) or one call
    messages: bool  # input.messages[{role, content: [{text}]}] rather than input.prompt


TEXT2IMAGE = Route("/services/aigc/text2image/image-synthesis", asynchronous=True, messages=False)
IMAGE_GENERATION = Route("/services/aigc/image-generation/generation", asynchronous=True, messages=True)
MULTIMODAL = Route("/services/aigc/multimodal-generation/generation", asynchronous=False, messages=True)


@dataclass(frozen=True)
class DashScopeModel:
    info: ModelInfo
    route: Route


# Qwen-Image (qwen-image, -plus, -max): five fixed sizes, one picture a call.
QWEN_SIZES = ((1664, 928), (1472, 1104), (1328, 1328), (1104, 1472), (928, 1664))


def _wan_sides(model_id: str, label: str) -> DashScopeModel:
    """Wan 2.2 and older: each side 512-1440; n 1-4."""
    info = ModelInfo(
        id=model_id, label=label, min_size=512, max_size=1440, size_multiple=1, max_images=4, max_seed=MAX_SEED
    )
    return DashScopeModel(info, TEXT2IMAGE)


# Wan 2.5 and 2.6 bound the pixel count: "between 1280*1280 and 1440*1440" on the current pages
# (768*768 on 2025 ones). The same pages recommend 1104*1472, 1472*1104, 960*1696 and 1696*960,
# up to 0.8% under 1280*1280, so the floor is the smallest of those rather than the rounded one.
WAN_MIN_PIXELS = 1104 * 1472
WAN_MAX_PIXELS = 1440 * 1440
WAN_SUGGESTED_SIZES = ((1280, 1280), (1104, 1472), (1472, 1104), (960, 1696), (1696, 960))


def _wan_area(model_id: str, label: str, route: Route) -> DashScopeModel:
    """Wan 2.5 and 2.6: pixels as above, shape 1:4 to 4:1 (so each side 638-2880); n 1-4."""
    info = ModelInfo(
        id=model_id,
        label=label,
        min_size=638,
        max_size=2880,
        size_multiple=1,
        max_images=4,
        max_seed=MAX_SEED,
        min_pixels=WAN_MIN_PIXELS,
        max_pixels=WAN_MAX_PIXELS,
        max_aspect_ratio=4.0,
        suggested_sizes=WAN_SUGGESTED_SIZES,
    )
    return DashScopeModel(info, route)


def _qwen(model_id: str, label: str, route: Route) -> DashScopeModel:
    info = ModelInfo(
        id=model_id, label=label, min_size=928, max_size=1664, sizes=QWEN_SIZES, max_images=1, max_seed=MAX_SEED
    )
    return DashScopeModel(info, route)


QWEN_2_SUGGESTED_SIZES = ((2048, 2048), (2688, 1536), (1536, 2688), (2368, 1728), (1728, 2368))


def _qwen_2(model_id: str, label: str) -> DashScopeModel:
    """Qwen-Image 2.0: 512*512 to 2048*2048 pixels; n 1-6. No side limit is documented; the
    recommended sizes reach 2688 (2688*1536), which is taken as the longest side."""
    info = ModelInfo(
        id=model_id,
        label=label,
        min_size=512,
        max_size=2688,
        size_multiple=1,
        max_images=6,
        max_seed=MAX_SEED,
        min_pixels=512 * 512,
        max_pixels=2048 * 2048,
        suggested_sizes=QWEN_2_SUGGESTED_SIZES,
    )
    return DashScopeModel(info, MULTIMODAL)


KNOWN_MODELS: dict[str, DashScopeModel] = {
    model.info.id: model
    for model in (
        _wan_area("wan2.6-t2i", "Wan 2.6", IMAGE_GENERATION),
        _wan_area("wan2.5-t2i-preview", "Wan 2.5 Preview", TEXT2IMAGE),
        _wan_sides("wan2.2-t2i-flash", "Wan 2.2 Flash"),
        _wan_sides("wan2.2-t2i-plus", "Wan 2.2 Plus"),
        _wan_sides("wanx2.1-t2i-turbo", "Wanx 2.1 Turbo"),
        _wan_sides("wanx2.1-t2i-plus", "Wanx 2.1 Plus"),
        _wan_sides("wanx2.0-t2i-turbo", "Wanx 2.0 Turbo"),
        _qwen("qwen-image", "Qwen-Image", TEXT2IMAGE),
        _qwen("qwen-image-plus", "Qwen-Image Plus", TEXT2IMAGE),
        _qwen("qwen-image-max", "Qwen-Image Max", MULTIMODAL),
        _qwen_2("qwen-image-2.0", "Qwen-Image 2.0"),
        _qwen_2("qwen-image-2.0-pro", "Qwen-Image 2.0 Pro"),
    )
}

_WAN_VERSION = re.compile(r"^wanx?(\d+)\.(\d+)")


def generic_model(model_id: str) -> DashScopeModel:
    """A model id we do not know (a dated snapshot, a newer release): the documented general
    limits of its family, by its name. Only an id of no known family gets the cautious ones."""
    lowered = model_id.lower()
    if lowered.startswith("qwen-image-2"):
        return _qwen_2(model_id, model_id)
    if lowered.startswith("qwen-image"):
        # The synchronous route serves the whole family; the async one only two named models.
        return _qwen(model_id, model_id, MULTIMODAL)
    version = _WAN_VERSION.match(lowered)
    if version:
        major_minor = (int(version[1]), int(version[2]))
        if major_minor >= (2, 6):
            return _wan_area(model_id, model_id, IMAGE_GENERATION)
        if major_minor == (2, 5):
            return _wan_area(model_id, model_id, TEXT2IMAGE)
        return _wan_sides(model_id, model_id)
    info = ModelInfo(
        id=model_id, label=model_id, min_size=512, max_size=1440, size_multiple=1, max_images=1, max_seed=MAX_SEED
    )
    return DashScopeModel(info, TEXT2IMAGE)


# --- errors -----------------------------------------------------------------------------


@dataclass(frozen=True)
class VendorError:
    """One row of the vendor's error-code page: its codes (the DashScope code and the
    OpenAI-style alias the page pairs with it; a trailing * matches a family), what it asks of
    whom, and what people are told (a catalogue key, errors.MESSAGES)."""

    codes: tuple[str, ...]
    kind: Kind
    key: str
    # Only for a code the page lists with several meanings: the start of the message (lower
    # case) that picks this one. Rows with a message come before the same code's general row.
    message: str = ""

    def matches(self, vendor_code: str, message: str) -> bool:
        if self.message and not message.lower().startswith(self.message):
            return False
        return any(
            vendor_code.startswith(code[:-1]) if code.endswith("*") else vendor_code == code for code in self.codes
        )


# alibabacloud.com/help/en/model-studio/error-code ("Error messages", the 2026 page), the
# codes an image call can meet. A finished job's own code is never worth another attempt: a
# transient row there means the job failed (generation_failed), see _job_error.
ERROR_TABLE: tuple[VendorError, ...] = (
    # 429: request-rate and token-rate limits; the account is fine, the next attempt may pass.
    VendorError(("Throttling",), Kind.TRANSIENT, "rate_limited"),
    VendorError(("Throttling.RateQuota", "LimitRequests", "limit_requests"), Kind.TRANSIENT, "rate_limited"),
    VendorError(("Throttling.BurstRate", "limit_burst_rate"), Kind.TRANSIENT, "rate_limited"),
    # ... except that the free quota is used up and the model has no paid use: no retry helps.
    VendorError(
        ("Throttling.AllocationQuota", "insufficient_quota"),
        Kind.ACCOUNT,
        "quota_exhausted.free_quota",
        message="free allocated quota exceeded",
    ),
    VendorError(("Throttling.AllocationQuota", "insufficient_quota"), Kind.TRANSIENT, "rate_limited"),
    # 5xx: the vendor's own trouble ("try again later").
    VendorError(
        (
            "InternalError",
            "internal_error",
            "InternalError.Algo",
            "InternalError.FileUpload",
            "InternalError.Upload",
            "SystemError",
            "ModelServiceFailed",
            "ModelServingError",
            "RewriteFailed",
            "ModelUnavailable",
        ),
        Kind.TRANSIENT,
        "provider_unavailable",
    ),
    VendorError(("RequestTimeOut", "InternalError.Timeout"), Kind.TRANSIENT, "timeout"),
    # The key, the account, its bills and its model access: an administrator must act.
    VendorError(("InvalidApiKey", "invalid_api_key"), Kind.ACCOUNT, "authentication_failed"),
    VendorError(
        ("Arrearage", "CommodityNotPurchased", "PrepaidBillOverdue", "PostpaidBillOverdue"),
        Kind.ACCOUNT,
        "quota_exhausted.billing",
    ),
    VendorError(("AllocationQuota.FreeTierOnly",), Kind.ACCOUNT, "quota_exhausted.free_quota"),
    # "current user api does not support (a)synchronous calls": this model wants the other way in.
    VendorError(("AccessDenied", "access_denied"), Kind.REQUEST, "invalid_request", message="current user api"),
    VendorError(
        ("AccessDenied", "access_denied", "AccessDenied.Unpurchased"),
        Kind.ACCOUNT,
        "permission_denied.model_activation",
    ),
    VendorError(("Model.AccessDenied", "App.AccessDenied"), Kind.ACCOUNT, "permission_denied"),
    VendorError(
        ("Workspace.AccessDenied", "WorkSpaceNotFound", "NOT AUTHORIZED"), Kind.ACCOUNT, "permission_denied.http_403"
    ),
    VendorError(
        ("ModelNotFound", "model_not_found", "Model.NotExist", "model_not_supported"),
        Kind.ACCOUNT,
        "model_not_found.not_offered",
    ),
    VendorError(("InvalidParameter",), Kind.ACCOUNT, "model_not_found.not_offered", message="model not found"),
    # Moderation: the person can reword the prompt.
    VendorError(("DataInspectionFailed", "data_inspection_failed"), Kind.CONTENT, "content_rejected"),
    VendorError(("IPInfringementSuspect",), Kind.CONTENT, "content_rejected.intellectual_property"),
    VendorError(("CustomRoleBlocked",), Kind.CONTENT, "content_rejected"),
    # Settings the vendor refused; its words say which. InvalidParameter.DataInspection is not
    # moderation: DashScope could not download an input ("Unable to download the media
    # resource during the data inspection process").
    VendorError(
        (
            "InvalidParameter*",
            "invalid_request_error*",
            "invalid_value",
            "BadRequest*",
            "InvalidURL*",
            "InvalidFile*",
            "InvalidImage*",
            "UnsupportedOperation",
        ),
        Kind.REQUEST,
        "invalid_request",
    ),
)

# The vendor's short reason helps a person only where our message cannot say what went wrong.
CODES_WITH_DETAIL = {"invalid_request", "permission_denied", "model_not_found", "generation_failed", "provider_error"}


def vendor_error(vendor_code: str, message: str) -> VendorError | None:
    """The ERROR_TABLE row for a vendor code and its message, or None."""
    return next((row for row in ERROR_TABLE if row.matches(vendor_code, message)), None)


# --- the provider -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    task_id: str
    request_id: str
    seed: int

    def as_state(self) -> JobState:
        return {"task_id": self.task_id, "request_id": self.request_id, "seed": self.seed}

    @classmethod
    def from_state(cls, state: JobState) -> _Job:
        state = _as_dict(state)
        task_id = str(state.get("task_id") or "")
        if not task_id:
            raise _error("task_expired")  # nothing names the job: it cannot be looked at
        seed = state.get("seed")
        return cls(
            task_id=task_id, request_id=str(state.get("request_id") or ""), seed=seed if isinstance(seed, int) else 0
        )


class DashScopeProvider(ConfiguredProvider):
    REQUIRED = ("API_KEY",)
    label = "Alibaba DashScope"
    # A submission or a status look answers at once (the job runs at the vendor); the
    # synchronous route waits longer (SYNC_TIMEOUT_SECONDS). TIMEOUT_SECONDS overrides both.
    DEFAULT_TIMEOUT_SECONDS = 30.0

    @classmethod
    def from_settings(cls, settings, name: str) -> DashScopeProvider | None:
        config = ProviderConfig.from_settings(settings, name)
        if not config.get("BASE_URL") and region_of(config) not in REGION_BASE_URLS:
            logger.error(
                "%sREGION must be one of %s (or set %sBASE_URL); the %s provider is not offered.",
                config.env_prefix,
                ", ".join(REGION_BASE_URLS),
                config.env_prefix,
                name,
            )
            return None
        return super().from_settings(settings, name)

    @property
    def base_url(self) -> str:
        configured = str(self.config.get("BASE_URL", "")).rstrip("/")
        if configured:
            return configured
        region = region_of(self.config)
        if region not in REGION_BASE_URLS:  # from_settings refuses this; a direct caller is told
            raise ValueError(f"unknown DashScope region {region!r}; expected one of {', '.join(REGION_BASE_URLS)}")
        return REGION_BASE_URLS[region]

    @property
    def sync_timeout(self) -> tuple[float, float]:
        read = float(self.config.get("TIMEOUT_SECONDS", SYNC_TIMEOUT_SECONDS))
        return (self.CONNECT_TIMEOUT_SECONDS, read)

    def models(self) -> list[ModelInfo]:
        return [self.model(model_id).info for model_id in self.model_ids()]

    def model_ids(self) -> list[str]:
        listed = self.config.get("MODELS", DEFAULT_MODELS)
        if isinstance(listed, str):
            listed = listed.split(",")
        return list(dict.fromkeys(str(model_id).strip() for model_id in listed if str(model_id).strip()))

    def model(self, model_id: str) -> DashScopeModel:
        return KNOWN_MODELS.get(model_id) or generic_model(model_id)

    def check(self) -> ModelListing:
        """Look up a made-up job: a bad key answers 401, and nothing is billed. DashScope
        documents no free listing of its image models, so only reachability is proven."""
        response = send("GET", f"{self.base_url}/tasks/{PROBE_TASK_ID}", timeout=self.timeout, headers=self._headers())
        if response.status_code == 200:
            return None
        error = _response_error(response)
        if error.transient or error.code in ("authentication_failed", "unexpected_redirect") or _not_the_api(response):
            raise error
        return None  # any other answer is DashScope's own: the key and the path work

    # --- the job, step by step (AsyncProvider) -------------------------------------------

    def runs_as_job(self, request: GenerationRequest) -> bool:
        return self.model(request.model).route.asynchronous

    def submit(self, request: GenerationRequest, save: SaveJob) -> JobState:
        """One POST; the job is saved the moment DashScope names it."""
        model = self.model(request.model)
        _validate(model.info, request)
        state = self._submit(model, request, _seed_for(request)).as_state()
        save(state)
        return state

    def check_job(self, request: GenerationRequest, state: JobState, save: SaveJob) -> JobCheck:
        """One GET of the job's status; a 429, 5xx or dropped connection raises a transient error."""
        return self._check(_Job.from_state(state), request.num_images)[1]

    def cancel_job(self, state: JobState) -> None:
        """Best effort: DashScope cancels only jobs still PENDING; a running one goes on (and is billed)."""
        task_id = str(_as_dict(state).get("task_id") or "")
        if task_id:
            self._cancel(task_id)

    def generate(self, request: GenerationRequest, progress: ProgressCallback | None = None) -> list[GeneratedImage]:
        """A synchronous model's one call; for a job, submit and check_job in one call, polling."""
        report = progress or (lambda percent: None)
        model = self.model(request.model)
        if not model.route.asynchronous:
            _validate(model.info, request)
            images = self._call(model, request, _seed_for(request))
            report(100)
            return images
        deadline = time.monotonic() + self.poll_deadline
        job = _Job.from_state(self.submit(request, lambda state: None))
        report(10)
        images = self._wait_for(job, request.num_images, deadline, report)
        report(100)
        return images

    # --- the calls --------------------------------------------------------------------

    def _submit(self, model: DashScopeModel, request: GenerationRequest, seed: int) -> _Job:
        response = send(
            "POST",
            self.base_url + model.route.path,
            timeout=self.timeout,
            resend_safe=False,  # a job DashScope accepted but whose answer was lost is not sent again
            headers={**self._headers(), "X-DashScope-Async": "enable"},
            json=self._body(model, request, seed),
        )
        if response.status_code != 200:
            raise _response_error(response)
        body = _as_dict(json_body(response))
        request_id = str(body.get("request_id") or "")
        task_id = str(_as_dict(body.get("output")).get("task_id") or "")
        if not task_id:
            raise _business_error(body, request_id) or _error(
                "provider_error.not_understood", request_id=request_id, detail="the answer named no job"
            )
        # The task id is what support needs to ask DashScope about a job (audit D7).
        logger.info("dashscope submitted model=%s task_id=%s request_id=%s", request.model, task_id, request_id)
        return _Job(task_id=task_id, request_id=request_id, seed=seed)

    def _call(self, model: DashScopeModel, request: GenerationRequest, seed: int) -> list[GeneratedImage]:
        """One synchronous generation: the pictures come back in the answer."""
        response = send(
            "POST",
            self.base_url + model.route.path,
            timeout=self.sync_timeout,
            resend_safe=False,  # DashScope may have made (and billed) the pictures
            headers=self._headers(),
            json=self._body(model, request, seed),
        )
        if response.status_code != 200:
            raise _response_error(response)
        body = _as_dict(json_body(response))
        request_id = str(body.get("request_id") or "")
        output = body.get("output")
        if not isinstance(output, dict):
            raise _business_error(body, request_id) or _error(
                "provider_error.not_understood", request_id=request_id, detail="the answer held no output"
            )
        logger.info("dashscope generated model=%s request_id=%s", request.model, request_id)
        job = _Job(task_id="", request_id=request_id, seed=seed)
        return _images(output, job, request.num_images)

    def _check(self, job: _Job, count: int) -> tuple[str, JobCheck]:
        """One look at the job: its status, and what it means for the task."""
        output = self._status(job)
        status = str(output.get("task_status") or "")
        if status not in FINAL_STATUSES:
            queued = status in ("PENDING", "SUSPENDED")
            return status, JobCheck(finished=False, progress=PROGRESS_BY_STATUS.get(status, 0), queued=queued)
        images = _outcome(output, job, count)
        return status, JobCheck(finished=True, progress=100, images=images, failed=max(0, count - len(images)))

    def _status(self, job: _Job) -> dict:
        """GET /tasks/{id}: the job's output. Errors are raised as classified; a transient one
        means "look again later", never "submit again" (that would pay for the job twice)."""
        response = send("GET", f"{self.base_url}/tasks/{job.task_id}", timeout=self.timeout, headers=self._headers())
        if response.status_code != 200:
            raise _response_error(response, request_id=job.request_id)
        output = _as_dict(json_body(response)).get("output")
        if not isinstance(output, dict):
            raise _error(
                "provider_error.not_understood", request_id=job.request_id, detail="the job status could not be read"
            )
        return output

    def _wait_for(self, job: _Job, count: int, deadline: float, report: ProgressCallback) -> list[GeneratedImage]:
        """Look until the job ends; at the deadline give up (transient: a new attempt may do better)."""
        delay = self.poll_interval
        reported, status = 10, "PENDING"
        while (remaining := deadline - time.monotonic()) > 0:
            time.sleep(min(delay, remaining))
            delay = min(delay * POLL_GROWTH, max(MAX_POLL_INTERVAL, self.poll_interval))
            try:
                status, check = self._check(job, count)
            except TransientProviderError:
                continue  # a 503 or a dropped connection does not end the job: look again
            if check.finished:
                return check.images
            if check.progress > reported:
                reported = check.progress
                report(reported)
        if status == "PENDING":
            self._cancel(job.task_id)
        raise TransientProviderError(
            "timeout",
            MESSAGES["timeout.unfinished_after"],
            params={"seconds": f"{self.poll_deadline:g}"},
            request_id=job.request_id,
        )

    def _cancel(self, task_id: str) -> None:
        """Best effort: a job still queued can be canceled, so an abandoned one is not billed."""
        try:
            response = send(
                "POST", f"{self.base_url}/tasks/{task_id}/cancel", timeout=self.timeout, headers=self._headers()
            )
        except ProviderError:
            return
        logger.info("dashscope cancel task_id=%s status=%s", task_id, response.status_code)

    # --- request parts ----------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.config.get('API_KEY')}", "Content-Type": "application/json"}
        workspace = self.config.get("WORKSPACE")
        if workspace:
            headers["X-DashScope-WorkSpace"] = str(workspace)
        return headers

    def _body(self, model: DashScopeModel, request: GenerationRequest, seed: int) -> dict:
        parameters = {
            "size": f"{request.width}*{request.height}",
            "n": request.num_images,  # always explicit: Wan defaults to 4, billed per picture
            "seed": seed,
            "prompt_extend": bool(self.config.get("PROMPT_EXTEND", False)),
            "watermark": False,
        }
        if model.route.messages:
            if request.negative_prompt:
                parameters["negative_prompt"] = request.negative_prompt
            message = {"role": "user", "content": [{"text": request.prompt}]}
            return {"model": request.model, "input": {"messages": [message]}, "parameters": parameters}
        prompt = {"prompt": request.prompt}
        if request.negative_prompt:
            prompt["negative_prompt"] = request.negative_prompt
        return {"model": request.model, "input": prompt, "parameters": parameters}


def _validate(info: ModelInfo, request: GenerationRequest) -> None:
    """The form checks this; a request from elsewhere must not waste a paid call."""
    problem = info.size_reason(request.width, request.height)
    if problem is None and not 1 <= request.num_images <= info.max_images:
        problem = Reason(MESSAGES["invalid_request.image_count"], {"model": info.label, "max": info.max_images})
    if problem:
        raise PermanentProviderError("invalid_request", problem)


def _seed_for(request: GenerationRequest) -> int:
    """DashScope does not say which seed it used, so always send one we know."""
    if request.seed is None:
        return random.SystemRandom().randint(0, MAX_SEED)
    if not 0 <= request.seed <= MAX_SEED:
        raise PermanentProviderError(
            "invalid_request", _("DashScope takes seeds from 0 to %(max)s."), params={"max": MAX_SEED}
        )
    return request.seed


# --- the job's outcome ----------------------------------------------------------------


def _outcome(output: dict, job: _Job, count: int) -> list[GeneratedImage]:
    status = output.get("task_status")
    if status == "SUCCEEDED":
        return _images(output, job, count)
    if status == "FAILED":
        raise _job_error(output, job.request_id, about_output=False)
    if status == "CANCELED":
        raise PermanentProviderError(
            "generation_failed", MESSAGES["generation_failed.canceled"], request_id=job.request_id
        )
    raise _error("task_expired", request_id=job.request_id)  # UNKNOWN


def _results(output: dict) -> list[dict]:
    """Each picture's entry, in either shape: `results` [{url} or {code, message}] (the
    text2image route) or `choices` [{message: {content: [{image}]}}] (the messages routes)."""
    results = [result for result in output.get("results") or [] if isinstance(result, dict)]
    for choice in output.get("choices") or []:
        content = _as_dict(_as_dict(choice).get("message")).get("content")
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and part.get("image"):
                results.append({"url": part["image"]})
    return results


def _images(output: dict, job: _Job, count: int) -> list[GeneratedImage]:
    """The results that have a picture; the caller counts the rest as failed. A job with no
    picture at all is an error: its first failed result's, or "0 of n pictures"."""
    results = _results(output)
    kept = [result for result in results if result.get("url")][:count]
    if not kept:
        failures = [result for result in results if not result.get("url")]
        if failures:
            # The job ran, so the prompt passed moderation: a failed result is about the picture.
            raise _job_error(failures[0], job.request_id, about_output=True)
        raise PermanentProviderError(
            "generation_failed",
            MESSAGES["generation_failed.too_few_pictures"],
            params={"count": 0, "wanted": count},
            request_id=job.request_id,
        )
    seed = job.seed if count == 1 else None
    extra = {"job_seed": job.seed, **({"task_id": job.task_id} if job.task_id else {})}
    return [
        GeneratedImage(url=str(result["url"]), seed=seed, request_id=job.request_id, extra=dict(extra))
        for result in kept
    ]


def _job_error(failure: dict, request_id: str, *, about_output: bool) -> ProviderError:
    """A FAILED job's output, or one failed result, as an error for the person. What the
    table calls transient (InternalError.Algo, a timeout) is final for a job that ran: the job
    failed, and looking again changes nothing."""
    vendor_code, message = str(failure.get("code") or ""), str(failure.get("message") or "")
    if _is_inspection(vendor_code):
        return _error(_inspection_key(message, about_output=about_output), request_id=request_id)
    row = vendor_error(vendor_code, message)
    if row is not None and row.kind is not Kind.TRANSIENT:
        return _error(row.key, request_id=request_id, detail=message)
    return _error("generation_failed", request_id=request_id, detail=message or vendor_code)


# --- error classification ---------------------------------------------------------------


def _response_error(response: requests.Response, request_id: str = "") -> ProviderError:
    """An HTTP error answer: {"code", "message", "request_id"} with the status."""
    body = _as_dict(json_body(response))
    vendor_code, message = str(body.get("code") or ""), str(body.get("message") or "")
    request_id = str(body.get("request_id") or request_id)
    wait = retry_after(response)  # a 429 or 503 may say how long to stay away
    if _is_inspection(vendor_code):
        return _error(_inspection_key(message, about_output=False), request_id=request_id)
    row = vendor_error(vendor_code, message)
    if row is not None:
        return _error(row.key, request_id=request_id, detail=message, retry_after=wait)
    if _not_the_api(response):
        # Not DashScope's JSON error: the base URL does not lead to the API.
        return _error("provider_error.no_such_path", request_id=request_id)
    if vendor_code and 400 <= response.status_code < 500 and response.status_code not in BY_STATUS_ALONE:
        return _error("provider_error.reported", request_id=request_id, detail=f"{vendor_code}: {message}".rstrip(": "))
    # No code, or one the page does not list (a new Throttling.*, say): its status says enough.
    return error_for_status(response.status_code, request_id=request_id, detail=_short(message), retry_after=wait)


# Statuses that name the trouble whatever the code: the key, access, a timeout, a rate limit.
BY_STATUS_ALONE = (401, 403, 408, 429)


def _business_error(body: dict, request_id: str) -> ProviderError | None:
    """An HTTP 200 whose body carries the vendor's `code` (the SDK reads these as errors too)."""
    vendor_code = str(body.get("code") or "")
    if not vendor_code:
        return None
    message = str(body.get("message") or "")
    if _is_inspection(vendor_code):
        return _error(_inspection_key(message, about_output=False), request_id=request_id)
    row = vendor_error(vendor_code, message)
    if row is not None:
        return _error(row.key, request_id=request_id, detail=message)
    return _error("provider_error.reported", request_id=request_id, detail=f"{vendor_code}: {message}".rstrip(": "))


def _not_the_api(response: requests.Response) -> bool:
    return response.status_code == 404 and not _as_dict(json_body(response)).get("code")


def _is_inspection(vendor_code: str) -> bool:
    return vendor_code in ("DataInspectionFailed", "data_inspection_failed")


def _inspection_key(message: str, *, about_output: bool) -> str:
    """The vendor says "Input or output data may contain inappropriate content"; trust it when it picks one."""
    text = message.lower()
    if "output" in text and "input" not in text:
        return "output_rejected"
    if "input" in text and "output" not in text:
        return "content_rejected"
    return "output_rejected" if about_output else "content_rejected"


def _error(key: str, *, request_id: str = "", detail: str = "", retry_after: float | None = None) -> ProviderError:
    """The error for a catalogue key, transient or not by its code, with the vendor's words
    added where our sentence cannot say enough (CODES_WITH_DETAIL)."""
    code = code_of(key)
    message = with_detail(MESSAGES[key], _short(detail) if code in CODES_WITH_DETAIL else "")
    if code in TRANSIENT_CODES:
        return TransientProviderError(code, message, request_id=request_id, retry_after=retry_after)
    return PermanentProviderError(code, message, request_id=request_id)


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _as_dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}
