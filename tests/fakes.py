"""A provider whose answers a test scripts: errors, results, or a hook to run mid-call."""

from __future__ import annotations

from collections.abc import Callable

from generator.providers import GeneratedImage, GenerationRequest, ModelInfo, ProviderError
from generator.providers.base import JobCheck
from generator.providers.offline import draw_sketch


class ScriptedProvider:
    name = "scripted"
    label = "Scripted (tests)"
    is_sketch = False
    # Each call pops the next step: an exception to raise, a list of results, a callable
    # run before drawing, or None to draw normally.
    script: list[ProviderError | list[GeneratedImage] | Callable[[], None] | None] = []
    calls = 0
    # What check() answers: the model ids on offer (None: it cannot list them), or an error to raise.
    listing: frozenset[str] | None | ProviderError = None

    @classmethod
    def from_settings(cls, settings, name: str = "scripted") -> ScriptedProvider:
        return cls()

    def models(self) -> list[ModelInfo]:
        return [ModelInfo(id="fixed", label="Fixed sizes", sizes=((256, 192), (512, 512)), max_images=2)]

    def check(self) -> frozenset[str] | None:
        if isinstance(type(self).listing, ProviderError):
            raise type(self).listing
        return type(self).listing

    def generate(self, request: GenerationRequest, progress=None) -> list[GeneratedImage]:
        type(self).calls += 1
        step = type(self).script.pop(0) if type(self).script else None
        if isinstance(step, ProviderError):
            raise step
        if isinstance(step, list):
            return step
        if callable(step):
            step()
        seed = request.seed or 5
        return [GeneratedImage(data=draw_sketch(request, seed + i), seed=seed + i) for i in range(request.num_images)]


class ScriptedJobProvider:
    """A provider whose vendor runs jobs (generator.providers.base.AsyncProvider), scripted.

    `checks` is popped on each check_job: an exception to raise, a JobCheck to answer, or None
    for "finished, all pictures drawn". Submissions, looks and cancels are counted.
    """

    name = "jobs"
    label = "Scripted jobs (tests)"
    is_sketch = False
    poll_interval = 1.0
    poll_deadline = 60.0
    download_policy = None
    checks: list[ProviderError | JobCheck | None] = []
    submit_error: ProviderError | None = None
    submitted: list[dict] = []
    looked = 0
    canceled: list[dict] = []

    @classmethod
    def reset(cls) -> None:
        cls.checks, cls.submit_error, cls.submitted, cls.looked, cls.canceled = [], None, [], 0, []

    @classmethod
    def from_settings(cls, settings, name: str = "jobs") -> ScriptedJobProvider:
        return cls()

    def models(self) -> list[ModelInfo]:
        return [ModelInfo(id="job-model", label="Job model", max_images=4)]

    def check(self) -> None:
        return None

    def runs_as_job(self, request: GenerationRequest) -> bool:
        return True

    def submit(self, request: GenerationRequest, save) -> dict:
        cls = type(self)
        if cls.submit_error is not None:
            raise cls.submit_error
        state = {"job_id": f"job-{len(cls.submitted) + 1}", "request_id": f"req-{len(cls.submitted) + 1}"}
        cls.submitted.append(state)
        save(state)
        return state

    def check_job(self, request: GenerationRequest, state: dict, save) -> JobCheck:
        cls = type(self)
        cls.looked += 1
        step = cls.checks.pop(0) if cls.checks else None
        if isinstance(step, ProviderError):
            raise step
        if isinstance(step, JobCheck):
            return step
        seed = request.seed or 5
        images = [GeneratedImage(data=draw_sketch(request, seed + i), seed=seed + i) for i in range(request.num_images)]
        return JobCheck(finished=True, progress=100, images=images)

    def cancel_job(self, state: dict) -> None:
        type(self).canceled.append(state)

    def generate(self, request: GenerationRequest, progress=None) -> list[GeneratedImage]:
        raise AssertionError("the scheduler must not call generate() for a job provider")
