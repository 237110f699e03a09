"""Alibaba Cloud DashScope (Model Studio): wan and qwen-image text-to-image.

Over HTTP these models run only as asynchronous jobs: one POST submits a job for all of a
task's pictures, then GET /tasks/{id} tells how it is going. The scheduler submits once
(submit) and looks at the job in short steps (check_job) without waiting in between;
generate() does both in one call, polling, for direct callers. Results are signed OSS links
that expire after 24 h; they are downloaded at once.

Choices where the vendor's documentation is silent (see providers.md §3):
- One job makes all n pictures. DashScope returns no seeds, so only a single picture
  records the seed we sent; for n > 1 no per-picture seed is claimed.
- Partial results are kept: when some of a job's results failed (or fewer came back than
  asked for), the pictures that succeeded are stored and the task notes how many failed.
  Only a job with no picture at all fails the task.
- prompt_extend is off unless DASHSCOPE_PROMPT_EXTEND is set: the person's prompt is used
  as written, and the LLM rewrite would add seconds to every job.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass

import requests
from django.utils.translation import gettext_lazy as _

from ..reasons import with_detail
from .base import (
    ConfiguredProvider,
    GeneratedImage,
    GenerationRequest,
    JobCheck,
    JobState,
    ModelInfo,
    ProgressCallback,
    SaveJob,
)
from .errors import MESSAGES, TRANSIENT_CODES, PermanentProviderError, ProviderError, TransientProviderError
from .http import error_for_status, json_body, retry_after, send

logger = logging.getLogger(__name__)

MAX_SEED = 2_147_483_647
DEFAULT_MODELS = ("wan2.2-t2i-flash", "wan2.2-t2i-plus", "qwen-image")
SUBMIT_PATH = "/services/aigc/text2image/image-synthesis"
# Any id works for check(): only the credentials are being tested.
PROBE_TASK_ID = "00000000-0000-0000-0000-000000000000"

# Polling follows the SDK's wait(): start short, grow, never wait more than 5 s between looks.
MAX_POLL_INTERVAL = 5.0
POLL_GROWTH = 1.5
PROGRESS_BY_STATUS = {"PENDING": 20, "SUSPENDED": 20, "RUNNING": 50}
FINAL_STATUSES = ("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN")

QWEN_SIZES = ((1664, 928), (1472, 1140), (1328, 1328), (1140, 1472), (928, 1664))


def _wan(model_id: str, label: str) -> ModelInfo:
    return ModelInfo(id=model_id, label=label, min_size=512, max_size=1440, max_images=4, max_seed=MAX_SEED)


def _qwen(model_id: str, label: str) -> ModelInfo:
    # The async route takes n = 1 only for qwen-image; several pictures would need several jobs.
    return ModelInfo(
        id=model_id, label=label, min_size=928, max_size=1664, sizes=QWEN_SIZES, max_images=1, max_seed=MAX_SEED
    )


KNOWN_MODELS = {
    model.id: model
    for model in (
        _wan("wan2.2-t2i-flash", "Wan 2.2 Flash"),
        _wan("wan2.2-t2i-plus", "Wan 2.2 Plus"),
        _wan("wanx2.1-t2i-turbo", "Wanx 2.1 Turbo"),
        _wan("wanx2.1-t2i-plus", "Wanx 2.1 Plus"),
        _wan("wanx2.0-t2i-turbo", "Wanx 2.0 Turbo"),
        # Bounded by area (768²…1440²) and shape (1:4…4:1), so each side spans 384…2880.
        ModelInfo(
            id="wan2.5-t2i-preview",
            label="Wan 2.5 Preview",
            min_size=384,
            max_size=2880,
            max_images=4,
            max_seed=MAX_SEED,
            min_pixels=768 * 768,
            max_pixels=1440 * 1440,
            max_aspect_ratio=4.0,
        ),
        _qwen("qwen-image", "Qwen-Image"),
        _qwen("qwen-image-plus", "Qwen-Image Plus"),
    )
}

# DashScope's wording where it differs from the catalogue's for the same code.
KEY_FOR_CODE = {
    "permission_denied": "permission_denied.model_activation",
    "model_not_found": "model_not_found.not_offered",
    "provider_error": "provider_error.reported",
}
# The vendor's short reason helps a person only where our message cannot say what went wrong.
CODES_WITH_DETAIL = {"invalid_request", "permission_denied", "model_not_found", "generation_failed", "provider_error"}
# A job that ran and failed is not retried automatically, except that these are worth naming.
JOB_FAILURE_CODES = {"quota_exhausted", "permission_denied", "invalid_request"}


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

    def models(self) -> list[ModelInfo]:
        listed = self.config.get("MODELS", DEFAULT_MODELS)
        if isinstance(listed, str):
            listed = listed.split(",")
        ids = [str(model_id).strip() for model_id in listed if str(model_id).strip()]
        return [KNOWN_MODELS.get(model_id) or _generic_model(model_id) for model_id in ids]

    def check(self) -> None:
        """Look up a made-up job: a bad key answers 401, and nothing is billed."""
        response = send("GET", f"{self.base_url}/tasks/{PROBE_TASK_ID}", timeout=self.timeout, headers=self._headers())
        if response.status_code == 200:
            return
        error = _response_error(response)
        if error.transient or error.code == "authentication_failed":
            raise error

    # --- the job, step by step (AsyncProvider) -------------------------------------------

    def runs_as_job(self, request: GenerationRequest) -> bool:
        return True  # every model here is an asynchronous job over HTTP

    def submit(self, request: GenerationRequest, save: SaveJob) -> JobState:
        """One POST; the job is saved the moment DashScope names it."""
        state = self._submit(request, _seed_for(request)).as_state()
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
        """submit and check_job in one call, polling, for callers that can wait."""
        report = progress or (lambda percent: None)
        deadline = time.monotonic() + self.poll_deadline
        job = _Job.from_state(self.submit(request, lambda state: None))
        report(10)
        images = self._wait_for(job, request.num_images, deadline, report)
        report(100)
        return images

    # --- the calls --------------------------------------------------------------------

    def _submit(self, request: GenerationRequest, seed: int) -> _Job:
        response = send(
            "POST",
            self.base_url + SUBMIT_PATH,
            timeout=self.timeout,
            headers={**self._headers(), "X-DashScope-Async": "enable"},
            json=self._body(request, seed),
        )
        if response.status_code != 200:
            raise _response_error(response)
        body = _as_dict(json_body(response))
        request_id = str(body.get("request_id") or "")
        task_id = str(_as_dict(body.get("output")).get("task_id") or "")
        if not task_id:
            raise _error("provider_error", request_id=request_id, detail="the answer named no job")
        # The task id is what support needs to ask DashScope about a job (audit D7).
        logger.info("dashscope submitted model=%s task_id=%s request_id=%s", request.model, task_id, request_id)
        return _Job(task_id=task_id, request_id=request_id, seed=seed)

    def _check(self, job: _Job, count: int) -> tuple[str, JobCheck]:
        """One look at the job: its status, and what it means for the task."""
        output = self._status(job)
        status = str(output.get("task_status") or "")
        if status not in FINAL_STATUSES:
            return status, JobCheck(finished=False, progress=PROGRESS_BY_STATUS.get(status, 0))
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
            raise _error("provider_error", request_id=job.request_id, detail="the job status could not be read")
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

    def _body(self, request: GenerationRequest, seed: int) -> dict:
        prompt = {"prompt": request.prompt}
        if request.negative_prompt:
            prompt["negative_prompt"] = request.negative_prompt
        return {
            "model": request.model,
            "input": prompt,
            "parameters": {
                "size": f"{request.width}*{request.height}",
                "n": request.num_images,  # always explicit: wan defaults to 4, billed per picture
                "seed": seed,
                "prompt_extend": bool(self.config.get("PROMPT_EXTEND", False)),
                "watermark": False,
            },
        }


def _generic_model(model_id: str) -> ModelInfo:
    """Limits every known DashScope text-to-image model accepts, for a model we do not know."""
    return ModelInfo(id=model_id, label=model_id, min_size=512, max_size=1440, max_images=1, max_seed=MAX_SEED)


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


def _images(output: dict, job: _Job, count: int) -> list[GeneratedImage]:
    """The results that have a picture; the caller counts the rest as failed. A job with no
    picture at all is an error: its first failed result's, or "0 of n pictures"."""
    results = [result for result in output.get("results") or [] if isinstance(result, dict)]
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
    return [
        GeneratedImage(
            url=str(result["url"]),
            seed=seed,
            request_id=job.request_id,
            extra={"task_id": job.task_id, "job_seed": job.seed},
        )
        for result in kept
    ]


def _job_error(failure: dict, request_id: str, *, about_output: bool) -> ProviderError:
    """A FAILED job's output, or one failed result, as an error for the person."""
    vendor_code, message = str(failure.get("code") or ""), str(failure.get("message") or "")
    if _is_inspection(vendor_code):
        return _error(_inspection_code(message, about_output=about_output), request_id=request_id)
    ours = _our_code(vendor_code, 0)
    if ours in JOB_FAILURE_CODES:
        return _error(ours, request_id=request_id, detail=message)
    return _error("generation_failed", request_id=request_id, detail=message or vendor_code)


# --- error classification ---------------------------------------------------------------


def _response_error(response: requests.Response, request_id: str = "") -> ProviderError:
    """An HTTP error answer: {"code", "message", "request_id"} with the status."""
    body = _as_dict(json_body(response))
    vendor_code, message = str(body.get("code") or ""), str(body.get("message") or "")
    request_id = str(body.get("request_id") or request_id)
    wait = retry_after(response)  # a 429 or 503 may say how long to stay away
    if _is_inspection(vendor_code):
        return _error(_inspection_code(message, about_output=False), request_id=request_id)
    ours = _our_code(vendor_code, response.status_code)
    if ours:
        return _error(ours, request_id=request_id, detail=message, retry_after=wait)
    if vendor_code and 400 <= response.status_code < 500:
        return _error("provider_error", request_id=request_id, detail=f"{vendor_code}: {message}".rstrip(": "))
    return error_for_status(response.status_code, request_id=request_id, detail=_short(message), retry_after=wait)


def _is_inspection(vendor_code: str) -> bool:
    return vendor_code.startswith("DataInspection") or vendor_code == "InvalidParameter.DataInspection"


def _inspection_code(message: str, *, about_output: bool) -> str:
    """The vendor says "Input or output data may contain inappropriate content"; trust it when it picks one."""
    text = message.lower()
    if "output" in text and "input" not in text:
        return "output_rejected"
    if "input" in text and "output" not in text:
        return "content_rejected"
    return "output_rejected" if about_output else "content_rejected"


def _our_code(vendor_code: str, status: int) -> str | None:
    if vendor_code in ("Arrearage", "AllocationQuota.FreeTierOnly"):
        return "quota_exhausted"
    if vendor_code == "InvalidApiKey" or status == 401:
        return "authentication_failed"
    if vendor_code.startswith("AccessDenied") or status == 403:
        return "permission_denied"
    if vendor_code == "ModelNotFound":
        return "model_not_found"
    if vendor_code.startswith("Throttling") or status == 429:
        return "rate_limited"
    if vendor_code == "RequestTimeOut" or status == 408:
        return "timeout"
    if vendor_code.startswith("InternalError") or status >= 500:
        return "provider_unavailable"
    if vendor_code.startswith(("InvalidParameter", "BadRequest", "InvalidURL")):
        return "invalid_request"
    return None


def _error(code: str, *, request_id: str = "", detail: str = "", retry_after: float | None = None) -> ProviderError:
    message = with_detail(MESSAGES[KEY_FOR_CODE.get(code, code)], _short(detail) if code in CODES_WITH_DETAIL else "")
    if code in TRANSIENT_CODES:
        return TransientProviderError(code, message, request_id=request_id, retry_after=retry_after)
    return PermanentProviderError(code, message, request_id=request_id)


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _as_dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}
