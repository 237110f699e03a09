"""The one small interface every image provider implements."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from ..reasons import Reason
from .http import DownloadPolicy, origin

# Called with 0–100 as a generation goes on. The scheduler's callback (LiveReport) can do more:
# see live_preview() and stop_requested() below.
ProgressCallback = Callable[[int], None]
# What check() found: the model ids a provider offers now, or None when it cannot list them.
ModelListing = frozenset[str] | None


class LiveReport(Protocol):
    """What the scheduler passes as `progress` to generate(): besides the percentage, it takes
    the provider's in-progress picture and says when the task's owner pressed Stop. Callable
    from any thread; it only records, the scheduler writes (generator.scheduler.watch)."""

    def __call__(self, percent: int) -> None: ...

    def preview(self, image: bytes) -> None: ...

    @property
    def stop_requested(self) -> bool: ...


def live_preview(progress: ProgressCallback | None) -> Callable[[bytes], None] | None:
    """The callback's preview() when it takes pictures (a LiveReport), else None."""
    return getattr(progress, "preview", None)


def stop_requested(progress: ProgressCallback | None) -> bool:
    """True once the task this generation is for was stopped (a LiveReport says so)."""
    return bool(getattr(progress, "stop_requested", False))


class GenerationStopped(Exception):
    """Raised by generate() that noticed the stop and ended the work early: there is nothing to
    keep. (A provider that cannot stop just returns; the scheduler discards the result.)"""


@dataclass(frozen=True)
class ModelInfo:
    """One model a provider offers, with the limits the form enforces."""

    id: str
    label: str | Promise  # lazy for built-in models whose name is translated
    min_size: int = 256
    max_size: int = 2048
    size_multiple: int = 8
    max_images: int = 4
    supports_negative_prompt: bool = True
    supports_seed: bool = True
    supports_steps: bool = False
    supports_guidance: bool = False
    max_seed: int = 2**32 - 1
    guidance_range: tuple[float, float] | None = None  # when narrower than the form's 0–30
    steps_range: tuple[int, int] | None = None  # when narrower than the form's 1–150
    sizes: tuple[tuple[int, int], ...] = ()  # fixed sizes only, when the model has them
    # The vendor's own presets for a model that takes any size within its limits: offered in
    # the size menu, without restricting it.
    suggested_sizes: tuple[tuple[int, int], ...] = ()
    # Area and shape limits, for models that bound the pixel count rather than each side.
    min_pixels: int | None = None
    max_pixels: int | None = None
    max_aspect_ratio: float | None = None

    def size_error(self, width: int, height: int) -> str | None:
        """A readable reason why this size is not allowed, in the active language, or None."""
        reason = self.size_reason(width, height)
        return None if reason is None else reason.render()

    def size_reason(self, width: int, height: int) -> Reason | None:
        """size_error's reason untranslated, for a worker to store on the task."""
        if self.sizes:
            if (width, height) not in self.sizes:
                allowed = ", ".join(f"{w}×{h}" for w, h in self.sizes)
                return Reason(
                    _("%(model)s only makes these sizes: %(sizes)s."), {"model": self.label, "sizes": allowed}
                )
            return None
        for value in (width, height):
            if not self.min_size <= value <= self.max_size:
                return Reason(
                    _("Width and height must be between %(min)s and %(max)s pixels for %(model)s."),
                    {"min": self.min_size, "max": self.max_size, "model": self.label},
                )
            if value % self.size_multiple:
                return Reason(
                    _("Width and height must be multiples of %(multiple)s."), {"multiple": self.size_multiple}
                )
        pixels = width * height
        if self.min_pixels and pixels < self.min_pixels:
            return Reason(
                _("%(model)s needs at least %(pixels)s pixels (width × height)."),
                {"model": self.label, "pixels": f"{self.min_pixels:,}"},
            )
        if self.max_pixels and pixels > self.max_pixels:
            return Reason(
                _("%(model)s makes at most %(pixels)s pixels (width × height)."),
                {"model": self.label, "pixels": f"{self.max_pixels:,}"},
            )
        if self.max_aspect_ratio and max(width, height) / min(width, height) > self.max_aspect_ratio:
            return Reason(
                _("%(model)s allows an aspect ratio of at most %(ratio)s:1."),
                {"model": self.label, "ratio": f"{self.max_aspect_ratio:g}"},
            )
        return None

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "label": str(self.label),
            "min_size": self.min_size,
            "max_size": self.max_size,
            "size_multiple": self.size_multiple,
            "sizes": [f"{w}x{h}" for w, h in self.sizes],
            "suggested_sizes": [f"{w}x{h}" for w, h in self.suggested_sizes],
            "max_images": self.max_images,
            "supports_negative_prompt": self.supports_negative_prompt,
            "supports_seed": self.supports_seed,
            "supports_steps": self.supports_steps,
            "supports_guidance": self.supports_guidance,
            "max_seed": self.max_seed,
            "guidance_range": list(self.guidance_range) if self.guidance_range else None,
            "steps_range": list(self.steps_range) if self.steps_range else None,
            "min_pixels": self.min_pixels,
            "max_pixels": self.max_pixels,
            "max_aspect_ratio": self.max_aspect_ratio,
        }


def guidance_range_error(model: str | Promise, low: float, high: float) -> Reason:
    return Reason(
        _("%(model)s takes a guidance scale from %(low)s to %(high)s."),
        {"model": model, "low": f"{low:g}", "high": f"{high:g}"},
    )


def steps_range_error(model: str | Promise, low: int, high: int) -> Reason:
    return Reason(_("%(model)s takes %(low)s to %(high)s steps."), {"model": model, "low": low, "high": high})


class TaskLike(Protocol):
    """What a request is built from: a Task row, read without importing the models here."""

    @property
    def prompt(self) -> str: ...
    @property
    def negative_prompt(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def num_images(self) -> int: ...
    @property
    def steps(self) -> int | None: ...
    @property
    def guidance_scale(self) -> float | None: ...
    @property
    def seed(self) -> int | None: ...


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    model: str
    width: int
    height: int
    num_images: int = 1
    negative_prompt: str = ""
    steps: int | None = None
    guidance_scale: float | None = None
    seed: int | None = None  # None: the provider picks

    @classmethod
    def from_task(cls, task: TaskLike) -> GenerationRequest:
        return cls(
            prompt=task.prompt,
            negative_prompt=task.negative_prompt,
            model=task.model,
            width=task.width,
            height=task.height,
            num_images=task.num_images,
            steps=task.steps,
            guidance_scale=task.guidance_scale,
            seed=task.seed,
        )


@dataclass
class GeneratedImage:
    """One result: the bytes, or a URL to fetch at once (provider links expire)."""

    data: bytes | None = None
    url: str | None = None
    seed: int | None = None
    request_id: str = ""  # the provider's id for the call, kept on the task for support
    extra: dict = field(default_factory=dict)


@dataclass
class JobCheck:
    """What one look at a submitted vendor job found (AsyncProvider.check_job).

    Not finished: `progress` (0–100) within the job. Finished: the pictures that succeeded in
    `images`, and how many of the ones asked for failed at the vendor in `failed` (a job with
    no picture at all raises a ProviderError instead).
    """

    finished: bool
    progress: int = 0
    images: list[GeneratedImage] = field(default_factory=list)
    failed: int = 0
    queued: bool = False  # not finished and still waiting in the vendor's queue (not started)


JobState = dict  # the provider's own record of a submitted job: JSON, kept on the task
SaveJob = Callable[[JobState], None]


class AsyncProvider(Protocol):
    """A provider whose vendor runs jobs: submitted once, then looked at in short steps.

    The scheduler (generator.scheduler.steps) never sleeps on these: submit() returns once the
    vendor has the job, and check_job() makes one round of status calls and returns.
    """

    @property
    def poll_interval(self) -> float:
        """Seconds before the first look at a job (looks then grow further apart)."""

    @property
    def poll_deadline(self) -> float:
        """Seconds a job may run at the vendor before it is canceled and the task times out."""

    @property
    def download_policy(self) -> DownloadPolicy: ...

    def runs_as_job(self, request: GenerationRequest) -> bool:
        """True when this request is a vendor job (submit/check_job); False: generate()."""

    def submit(self, request: GenerationRequest, save: SaveJob) -> JobState:
        """Submit the job. Call save(state) the moment the vendor names each job, before
        anything else can fail, so a worker that dies now never leads to a second submission."""

    def check_job(self, request: GenerationRequest, state: JobState, save: SaveJob) -> JobCheck:
        """One look at the job: transient errors (429, 5xx, a dropped connection) raise
        TransientProviderError and the scheduler looks again later; it never resubmits.
        A submission that a dead worker left incomplete (fewer jobs than pictures asked for)
        is completed here, saving each new job at once."""

    def cancel_job(self, state: JobState) -> None:
        """Best effort: cancel the vendor job where the API allows; never raises."""


class Provider(Protocol):
    name: str
    label: str
    is_sketch: bool  # True for the offline provider: its pictures are not AI

    def models(self) -> list[ModelInfo]: ...

    def generate(
        self, request: GenerationRequest, progress: ProgressCallback | None = None
    ) -> list[GeneratedImage]: ...

    def check(self) -> ModelListing:
        """Ask the provider what it offers now, cheaply and without making a picture.

        Returns the ids of the models it offers (a model it lists as shut down is left out),
        or None when it has no way to list them and only reachability was proven. Raises
        ProviderError when it cannot be reached or refuses the credentials. The catalogue
        (generator.catalogue) calls this at start-up, hourly and from `manage.py check_providers`,
        and hides a configured model missing from the listing.
        """

    # Only providers that may return result URLs need this: the worker fetches them under it.
    @property
    def download_policy(self) -> DownloadPolicy: ...


@dataclass(frozen=True)
class ProviderConfig:
    """One provider instance's settings, as config/settings.py read them from the environment.

    Keys are variable names without the instance's prefix: ACCESS_KEY for VOLCENGINE_ACCESS_KEY.
    """

    name: str
    env_prefix: str
    values: dict
    explicitly_set: frozenset[str]  # keys whose variable is present in the environment

    @classmethod
    def from_settings(cls, settings, name: str) -> ProviderConfig:
        raw = dict(getattr(settings, "PROVIDER_CONFIG", {}).get(name, {}))
        prefix = raw.pop("ENV_PREFIX", f"{name.upper()}_")
        explicitly_set = frozenset(raw.pop("SET", ()))
        return cls(name=name, env_prefix=prefix, values=raw, explicitly_set=explicitly_set)

    def get(self, key: str, default=None):
        value = self.values.get(key)
        return default if value in (None, "", [], ()) else value

    def missing(self, required: tuple[str, ...]) -> list[str]:
        """Variables still needed, when the operator started configuring this provider."""
        if not self.explicitly_set and not any(self.get(key) for key in required):
            return []
        return [self.env_prefix + key for key in required if not self.get(key)]

    def is_complete(self, required: tuple[str, ...]) -> bool:
        return all(self.get(key) for key in required)


class ConfiguredProvider:
    """Shared plumbing for providers configured from the environment.

    Subclasses set REQUIRED (keys that must be set for the provider to be offered), `label`,
    and implement models(), generate() and check().
    """

    REQUIRED: tuple[str, ...] = ()
    label = ""
    is_sketch = False

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self.name = config.name

    @classmethod
    def from_settings(cls, settings, name: str):
        config = ProviderConfig.from_settings(settings, name)
        return cls(config) if config.is_complete(cls.REQUIRED) else None

    @property
    def base_url(self) -> str:
        return str(self.config.get("BASE_URL", "")).rstrip("/")

    @property
    def download_policy(self) -> DownloadPolicy:
        return DownloadPolicy(
            allow_private=bool(self.config.get("SELF_HOSTED", False)),
            trusted_origin=origin(self.base_url) if self.base_url else "",
        )

    # Seconds to wait for an answer, fitted to the vendor's real latency; <PREFIX>TIMEOUT_SECONDS overrides.
    DEFAULT_TIMEOUT_SECONDS = 120.0
    CONNECT_TIMEOUT_SECONDS = 10.0

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.CONNECT_TIMEOUT_SECONDS, float(self.config.get("TIMEOUT_SECONDS", self.DEFAULT_TIMEOUT_SECONDS)))

    # For asynchronous providers: first wait between status checks, and the whole budget.
    @property
    def poll_interval(self) -> float:
        return float(self.config.get("POLL_INTERVAL_SECONDS", 1.0))

    @property
    def poll_deadline(self) -> float:
        return float(self.config.get("POLL_DEADLINE_SECONDS", 180.0))

    def runs_as_job(self, request: GenerationRequest) -> bool:
        """Asynchronous providers (AsyncProvider) say which requests are vendor jobs."""
        return False
