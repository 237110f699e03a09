"""AUTOMATIC1111 stable-diffusion-webui (and Forge / SD.Next) on an operator's own GPU box.

One synchronous call per task: POST /sdapi/v1/txt2img answers with base64 PNGs and, in
`info` (JSON inside a JSON string), the seed each image used. The WebUI runs one generation
at a time behind a global lock, so a call may first wait for others: the read timeout is
long, and one worker per box is the sensible setup.

While the call runs, a thread asks every PROGRESS_SECONDS for the percentage and
(LIVE_PREVIEW) the picture so far, and when the task is stopped it sends POST
/sdapi/v1/interrupt: the WebUI then ends the call early with its unfinished pictures, which are
thrown away. The call names itself (`force_task_id`) and the thread asks about it by that name
(POST /internal/progress, WebUI 1.6 and later), so neither the progress nor an interrupt is ever
taken from another caller's generation on the same box. A WebUI without that route is asked GET
/sdapi/v1/progress, which describes whatever the box runs: that is taken for ours (true with the
default AUTOMATIC1111_CONCURRENCY=1 when nobody else uses the box).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import threading
import time
import uuid
from typing import Any

import requests
from django.utils.translation import gettext_lazy as _

from ..reasons import Reason
from .base import (
    ConfiguredProvider,
    GeneratedImage,
    GenerationRequest,
    GenerationStopped,
    ModelInfo,
    ModelListing,
    ProgressCallback,
    live_preview,
    stop_requested,
)
from .errors import MESSAGES, PermanentProviderError, ProviderError, TransientProviderError
from .http import DownloadPolicy, error_for_status, json_body, origin, retry_after, send

logger = logging.getLogger(__name__)

TXT2IMG_PATH = "/sdapi/v1/txt2img"
MODELS_PATH = "/sdapi/v1/sd-models"
PROGRESS_PATH = "/sdapi/v1/progress"
CALL_PROGRESS_PATH = "/internal/progress"  # one call's progress, by its id_task (WebUI 1.6+)
INTERRUPT_PATH = "/sdapi/v1/interrupt"
PROGRESS_TIMEOUT = (3.0, 5.0)  # progress is answered outside the generation lock
# A preview is asked for at most this often (encoding it costs the box a little each time).
PREVIEW_SECONDS = 2.0
DEFAULT_MODEL = "default"  # no override: whatever checkpoint the WebUI has loaded
MAX_SEED = 2**32 - 1
DEFAULT_GUIDANCE = 7.0
CHECK_TIMEOUT = (5.0, 15.0)  # sd-models does not wait for the generation lock
# Checkpoint titles end in a short hash: "v1-5-pruned-emaonly.safetensors [6ce0161689]".
TITLE_HASH_RE = re.compile(r"\s*\[[0-9a-fA-F]{8,64}\]$")
MAX_REASON_LENGTH = 200
UNDECODABLE = _("The WebUI returned an image Atelier could not decode.")


def _listed_checkpoints(body: Any) -> frozenset[str]:
    """Every name a configured checkpoint may go by: title (with its hash), title without the
    hash, and model name; and DEFAULT_MODEL, which is whatever is loaded."""
    items = [item for item in body if isinstance(item, dict)] if isinstance(body, list) else []
    names = {str(item[key]) for item in items for key in ("title", "model_name") if item.get(key)}
    return frozenset(names | {TITLE_HASH_RE.sub("", name) for name in names} | {DEFAULT_MODEL})


class Automatic1111Provider(ConfiguredProvider):
    REQUIRED = ("BASE_URL",)
    DEFAULT_TIMEOUT_SECONDS = 240.0
    # Basic auth needs both; one without the other is a configuration mistake.
    REQUIRED_TOGETHER = (("USERNAME", "PASSWORD"),)
    label = "Stable Diffusion WebUI"

    def models(self) -> list[ModelInfo]:
        titles = [str(title) for title in self.config.get("MODELS", [])]
        if not titles:
            return [_model_info(DEFAULT_MODEL, "Current checkpoint")]
        return [_model_info(title, TITLE_HASH_RE.sub("", title) or title) for title in titles]

    @property
    def download_policy(self) -> DownloadPolicy:
        # Self-hosted by nature: the box is on the operator's network, usually over plain http.
        return DownloadPolicy(allow_private=True, trusted_origin=origin(self.base_url))

    @property
    def progress_seconds(self) -> float:
        return float(self.config.get("PROGRESS_SECONDS", 1.0))

    def generate(self, request: GenerationRequest, progress: ProgressCallback | None = None) -> list[GeneratedImage]:
        job = f"atelier-{uuid.uuid4().hex}"
        payload = {**self._payload(request), "force_task_id": job}
        watcher = _Watcher(self, job, progress) if progress is not None and self.progress_seconds > 0 else None
        if watcher is not None:
            watcher.start()
        try:
            response = send("POST", self.base_url + TXT2IMG_PATH, json=payload, timeout=self.timeout, **self._auth())
        finally:
            if watcher is not None:
                watcher.finish()
        if stop_requested(progress):
            raise GenerationStopped  # interrupted (or about to be discarded): nothing to keep
        if response.status_code != 200:
            raise self._error(response)
        results = _results(json_body(response), request)
        if progress:
            progress(100)
        return results

    def interrupt(self) -> None:
        """POST /sdapi/v1/interrupt: the WebUI ends the generation it is running now."""
        send("POST", self.base_url + INTERRUPT_PATH, timeout=PROGRESS_TIMEOUT, **self._auth())

    def progress_of(self, job: str, preview_id: int) -> Any:
        """POST /internal/progress about one call by name: its JSON (None unless 200)."""
        response = send(
            "POST",
            self.base_url + CALL_PROGRESS_PATH,
            json={"id_task": job, "id_live_preview": preview_id},
            timeout=PROGRESS_TIMEOUT,
            **self._auth(),
        )
        return json_body(response) if response.status_code == 200 else None

    def look(self, want_picture: bool) -> Any:
        """GET /sdapi/v1/progress, its JSON (None unless 200)."""
        response = send(
            "GET",
            self.base_url + PROGRESS_PATH,
            params={"skip_current_image": "false" if want_picture else "true"},
            timeout=PROGRESS_TIMEOUT,
            **self._auth(),
        )
        return json_body(response) if response.status_code == 200 else None

    def check(self) -> ModelListing:
        """The checkpoints the WebUI has (sd-models): a configured title it lacks is retired by
        the catalogue, since the WebUI would quietly use another checkpoint instead."""
        response = send("GET", self.base_url + MODELS_PATH, timeout=CHECK_TIMEOUT, **self._auth())
        if response.status_code != 200:
            raise self._error(response)
        return _listed_checkpoints(json_body(response))

    # --- request ---------------------------------------------------------------------------

    def _payload(self, request: GenerationRequest) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt,
            # The WebUI reports the seeds it used, so -1 (random) loses nothing.
            "seed": request.seed if request.seed is not None else -1,
            "width": request.width,
            "height": request.height,
            "steps": request.steps or int(self.config.get("STEPS", 25)),
            "cfg_scale": request.guidance_scale if request.guidance_scale is not None else DEFAULT_GUIDANCE,
            "sampler_name": str(self.config.get("SAMPLER", "Euler a")),
            "batch_size": request.num_images,
            "n_iter": 1,
            "send_images": True,
            "save_images": False,
        }
        if request.model != DEFAULT_MODEL:
            # Switching reloads weights (slow) and is global; restore it for the box's other users.
            payload["override_settings"] = {"sd_model_checkpoint": request.model}
            payload["override_settings_restore_afterwards"] = True
        return payload

    def _auth(self) -> dict[str, Any]:
        username, password = self.config.get("USERNAME"), self.config.get("PASSWORD")
        return {"auth": requests.auth.HTTPBasicAuth(username, password)} if username and password else {}

    # --- errors ----------------------------------------------------------------------------

    def _error(self, response: requests.Response) -> ProviderError:
        body = json_body(response)
        reason = _reason(body)
        status = response.status_code
        wait = retry_after(response)  # a busy box or a proxy in front of it may say when to come back
        if status == 401:
            return PermanentProviderError("authentication_failed", self._auth_message())
        if status == 404:
            return self._not_found(reason)
        if status == 422:
            return self._not_accepted(reason)
        if status >= 500 and _is_out_of_memory(body):
            # The same size runs out of memory again: retrying only keeps the GPU busy.
            return PermanentProviderError(
                "invalid_request",
                _("The GPU ran out of memory making this picture. Try a smaller size or fewer images."),
            )
        if status >= 500:
            if reason:
                return TransientProviderError(
                    "provider_unavailable",
                    MESSAGES["provider_unavailable.reason"],
                    params={"reason": reason},
                    retry_after=wait,
                )
            return TransientProviderError("provider_unavailable", MESSAGES["provider_unavailable"], retry_after=wait)
        return error_for_status(status, detail=reason, retry_after=wait)

    def _auth_message(self) -> Reason:
        prefix = self.config.env_prefix
        variables = {"username": f"{prefix}USERNAME", "password": f"{prefix}PASSWORD"}
        missing = [prefix + key for key in ("USERNAME", "PASSWORD") if not self.config.get(key)]
        if not missing:
            return Reason(
                _(
                    "The WebUI refused the username/password. "
                    "An administrator needs to check %(username)s and %(password)s."
                ),
                variables,
            )
        if len(missing) == 1:
            return Reason(
                _(
                    "The WebUI asks for a username and password (it runs with --api-auth), "
                    "but %(variable)s is not set. An administrator needs to set it."
                ),
                {"variable": missing[0]},
            )
        return Reason(
            _(
                "The WebUI asks for a username and password (it runs with --api-auth). "
                "An administrator needs to set %(username)s and %(password)s."
            ),
            variables,
        )

    @staticmethod
    def _not_accepted(reason: str) -> PermanentProviderError:
        if reason:
            return PermanentProviderError(
                "invalid_request", _("The WebUI did not accept these settings (%(reason)s)."), params={"reason": reason}
            )
        return PermanentProviderError("invalid_request", _("The WebUI did not accept these settings."))

    def _not_found(self, reason: str) -> PermanentProviderError:
        if reason.lower() in ("", "not found"):
            # FastAPI's own 404: the /sdapi/v1 routes only exist when the WebUI runs with --api.
            return PermanentProviderError(
                "invalid_request",
                _(
                    "The WebUI at this address has no API. It must be started with --api, "
                    "and %(variable)s must point at the WebUI itself."
                ),
                params={"variable": f"{self.config.env_prefix}BASE_URL"},
            )
        if "sampler" in reason.lower():
            return PermanentProviderError(
                "invalid_request",
                _(
                    "The WebUI does not know the configured sampler (%(reason)s). "
                    "An administrator needs to check %(variable)s."
                ),
                params={"reason": reason, "variable": f"{self.config.env_prefix}SAMPLER"},
            )
        if "model" in reason.lower() or "checkpoint" in reason.lower():
            return PermanentProviderError(
                "model_not_found", _("The WebUI does not have this checkpoint (%(reason)s)."), params={"reason": reason}
            )
        return self._not_accepted(reason)


class _Watcher(threading.Thread):
    """Watches one txt2img call from beside it: progress, preview, and the interrupt on Stop.

    It asks POST /internal/progress about this call by name (`id_task`, the call's
    force_task_id): the WebUI says whether it is running now (`active`), its progress and a new
    live preview. A WebUI without that route (before 1.6, some forks) is asked GET
    /sdapi/v1/progress instead, which describes whatever the box runs (its `current_task` is
    used where it names a job; upstream always leaves it null). Nothing here may fail the
    generation: every error is logged and the next look tried.
    """

    def __init__(self, provider: Automatic1111Provider, job: str, report: ProgressCallback) -> None:
        super().__init__(name=f"webui-progress-{job[-8:]}", daemon=True)
        self.provider, self.job, self.report = provider, job, report
        self.preview = live_preview(report) if provider.config.get("LIVE_PREVIEW", True) else None
        self.interrupted = False
        self.by_name: bool | None = None  # /internal/progress answers (None: not asked yet)
        self._preview_id = -1  # the last live preview received (/internal/progress)
        self._done = threading.Event()
        self._next_picture = 0.0

    def finish(self) -> None:
        self._done.set()
        self.join(timeout=PROGRESS_TIMEOUT[0] + PROGRESS_TIMEOUT[1] + 1)

    def run(self) -> None:
        while not self._done.wait(self.provider.progress_seconds):
            try:
                self.look()
            except Exception as exc:  # a progress failure never fails the task
                logger.info("webui progress look failed: %s", exc)

    def look(self) -> None:
        want_picture = (
            self.preview is not None and time.monotonic() >= self._next_picture and not stop_requested(self.report)
        )
        if self.by_name is not False:
            body = self.provider.progress_of(self.job, self._preview_id)
            if isinstance(body, dict) and "active" in body:
                self.by_name = True
                if body.get("active"):  # not queued behind another call, not finished
                    id_preview = body.get("id_live_preview")
                    if isinstance(id_preview, int) and not isinstance(id_preview, bool):
                        self._preview_id = id_preview
                    self.follow(body.get("progress"), body.get("live_preview") if want_picture else None)
                return
            if self.by_name is None:
                self.by_name = False  # no such route here: ask the general one from now on
            else:
                return  # a passing failure of a route that answered before
        body = self.provider.look(want_picture)
        if isinstance(body, dict) and self.is_running(body):
            self.follow(body.get("progress"), body.get("current_image") if want_picture else None)

    def follow(self, fraction: Any, picture: Any) -> None:
        """This call is the one the box runs now: interrupt it if stopped, else report it."""
        if stop_requested(self.report):
            if not self.interrupted:
                self.provider.interrupt()
                self.interrupted = True
                logger.info("webui job %s interrupted", self.job)
            return
        if isinstance(fraction, int | float) and not isinstance(fraction, bool):
            self.report(max(0, min(99, int(fraction * 100))))  # 100 is the answer's, not a look's
        if self.preview is not None and isinstance(picture, str) and picture:
            try:
                self.preview(_decode(picture))
            except ProviderError:
                return
            self._next_picture = time.monotonic() + PREVIEW_SECONDS

    def is_running(self, body: dict) -> bool:
        """/sdapi/v1/progress: this call is running, by its name where the WebUI gives one, else
        by whether the box runs anything at all."""
        current = body.get("current_task")
        if isinstance(current, str) and current:
            return current == self.job
        state = body.get("state")
        return isinstance(state, dict) and bool(state.get("job_count"))


def _model_info(model_id: str, label: str) -> ModelInfo:
    return ModelInfo(
        id=model_id,
        label=label,
        min_size=64,
        max_size=2048,
        size_multiple=8,
        max_images=4,
        supports_negative_prompt=True,
        supports_seed=True,
        max_seed=MAX_SEED,
        supports_steps=True,
        supports_guidance=True,
    )


# --- response ------------------------------------------------------------------------------


def _results(body: Any, request: GenerationRequest) -> list[GeneratedImage]:
    encoded = body.get("images") if isinstance(body, dict) else None
    if not isinstance(encoded, list):
        raise PermanentProviderError("provider_error", _("The WebUI answered without any images."))
    wanted = request.num_images
    if len(encoded) < wanted:
        raise PermanentProviderError(
            "provider_error",
            _("The WebUI returned %(count)s of %(wanted)s images."),
            params={"count": len(encoded), "wanted": wanted},
        )
    # Extras come first (a grid, should a WebUI make one despite save_images=false): keep the last ones.
    images = [_decode(item) for item in encoded[-wanted:]]
    seeds = _seeds(body.get("info"), request)
    return [GeneratedImage(data=data, seed=seed) for data, seed in zip(images, seeds, strict=True)]


def _decode(item: Any) -> bytes:
    if not isinstance(item, str):
        raise PermanentProviderError("invalid_image", UNDECODABLE)
    encoded = item.rpartition("base64,")[2]  # some forks send data: URLs
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PermanentProviderError("invalid_image", UNDECODABLE) from exc


def _seeds(info: Any, request: GenerationRequest) -> list[int | None]:
    """The seed of each kept image: info.all_seeds, else the first seed counted up, else unknown."""
    wanted = request.num_images
    if isinstance(info, str):
        try:
            info = json.loads(info)
        except ValueError:
            info = None
    info = info if isinstance(info, dict) else {}
    all_seeds = [seed for seed in info.get("all_seeds") or [] if _is_seed(seed)]
    if len(all_seeds) >= wanted:
        return all_seeds[-wanted:]
    first = info.get("seed") if _is_seed(info.get("seed")) else request.seed
    # A batch runs on consecutive seeds, so the first one names them all.
    return [first + index if first is not None else None for index in range(wanted)]


def _is_seed(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _reason(body: Any) -> str:
    """The WebUI's short reason: `detail` (a string, or FastAPI's validation list), else `errors`."""
    if not isinstance(body, dict):
        return ""
    detail = body.get("detail")
    if isinstance(detail, list):
        detail = "; ".join(_validation_message(item) for item in detail if isinstance(item, dict))
    if not isinstance(detail, str) or not detail.strip():
        errors = body.get("errors")
        detail = errors if isinstance(errors, str) else ""
    text = " ".join(detail.split())
    return text if len(text) <= MAX_REASON_LENGTH else text[: MAX_REASON_LENGTH - 1] + "…"


def _validation_message(item: dict) -> str:
    field = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
    message = str(item.get("msg", "invalid"))
    return f"{field}: {message}" if field else message


def _is_out_of_memory(body: Any) -> bool:
    if not isinstance(body, dict):
        return False
    text = " ".join(str(body.get(key, "")) for key in ("error", "detail", "errors")).lower()
    return "outofmemory" in text or "out of memory" in text
