"""One step of a task, run by the worker that claimed it; no step ever sleeps.

A step is one of: send a synchronous provider's call and store its pictures; submit a vendor
job and let go of the task; look at a submitted job once. It ends by completing or failing
the task, or by releasing it with the time its next step is due (a retry after a transient
error, the next look at a job). The task's states and transitions: docs/SCHEDULING.md.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
from datetime import timedelta
from multiprocessing.synchronize import Event
from typing import Any, cast

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _
from django_q.conf import Conf

from .. import catalogue, live, services
from ..lib import imaging
from ..models import Task
from ..providers import (
    GeneratedImage,
    GenerationRequest,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
    get_provider,
)
from ..providers.base import AsyncProvider, GenerationStopped, JobCheck, Provider
from ..providers.errors import MESSAGES as PROVIDER_MESSAGES
from ..providers.http import download_image
from ..reasons import Reason
from . import claim, heartbeat, limits, watch
from .queue import wake

logger = logging.getLogger(__name__)

# Translators: shown while a task waits to try again; %(reason)s is why the attempt failed.
RETRYING = _("%(reason)s Trying again in %(delay)s s (attempt %(attempt)s of %(attempts)s).")
PARTIAL = _("%(failed)s of %(wanted)s pictures failed at the provider; the others were kept.")
# A vendor job is looked at no less often than this, however long it runs.
MAX_CHECK_INTERVAL = 5.0
CHECK_INTERVAL_GROWTH = 1.5


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# The task this process holds right now: jobs.dispatch fails it if django-q2 stops the step.
current: Task | None = None
# Set when the cluster is told to stop (manage.py qcluster shares it with its forked workers):
# a worker then finishes its step and claims no more.
stopping: Event | None = None


def work(budget_seconds: float | None = None) -> int:
    """Claim and run steps, fairly, until nothing may run or the budget is spent; the count.

    In django-q2's sync mode (tests, no cluster) one message runs one step: the "worker" is
    whoever enqueued it.
    """
    budget = settings.TASK_TIMEOUT / 4 if budget_seconds is None else budget_seconds
    started, steps, worker = time.monotonic(), 0, worker_name()
    while True:
        if stopping is not None and stopping.is_set():
            return steps
        task = claim.claim_next(worker)
        if task is None:
            return steps
        run_step(task)
        steps += 1
        if Conf.SYNC:
            return steps
        if time.monotonic() - started >= budget:
            wake()  # whatever is left is for the next free worker
            return steps


def run_step(task: Task) -> None:
    """Run the claimed task's step to its end state or release it; never raises."""
    global current
    current = task
    provider = get_provider(task.provider)
    try:
        with heartbeat.beating(task, enabled=not Conf.SYNC):
            if provider is None:
                raise PermanentProviderError("provider_unavailable", services.MESSAGES["provider_unavailable"])
            if task.provider_job is None and catalogue.is_retired(task.provider, task.model):
                raise PermanentProviderError("model_retired", PROVIDER_MESSAGES["model_retired"])
            request = GenerationRequest.from_task(task)
            job_provider = _job_provider(provider, request)
            if task.provider_job is not None:
                if job_provider is None:  # reconfigured since the job was submitted
                    raise PermanentProviderError("provider_unavailable", services.MESSAGES["provider_unavailable"])
                _check(task, job_provider, request)
            elif job_provider is not None:
                _submit(task, job_provider, request)
            else:
                _generate(task, provider, request)
    except GenerationStopped:
        logger.info("task %s stopped; whatever the provider made is discarded", task.pk)
    except TransientProviderError as error:
        _after_transient(task, error)
    except ProviderError as error:
        if not (error.code == "quota_exhausted" and _fail_over(task, error)):
            _fail(task, error.code, error.reason, error.request_id)
    except imaging.InvalidImage as error:
        _fail(task, "invalid_image", error.reason)
    except Exception:
        logger.exception("task %s failed with an unexpected error", task.pk)
        _fail(task, "internal_error", Reason(services.MESSAGES["internal_error"]))
    finally:
        current = None
        # Every step ends in a change the owner sees (done, failed, retrying, moved, watched).
        live.task_changed(task.owner_id)


# --- the three kinds of step -----------------------------------------------------------


def _job_provider(provider: Provider, request: GenerationRequest) -> AsyncProvider | None:
    """The provider as an AsyncProvider when it runs this request as a vendor job. Providers
    without jobs (the offline sketcher, plain HTTP ones) need not implement runs_as_job."""
    runs_as_job = getattr(provider, "runs_as_job", None)
    if runs_as_job is not None and runs_as_job(request):
        return cast(AsyncProvider, provider)
    return None


def _generate(task: Task, provider: Provider, request: GenerationRequest) -> None:
    """One synchronous call, watched (generator.scheduler.watch): its progress and preview are
    written as they come, and when the owner stops the task the answer is discarded unread."""
    logger.info("task %s generating provider=%s attempt=%s", task.pk, task.provider, task.attempts)
    _progress(task, watch.LOW)
    with watch.watching(task, threaded=not Conf.SYNC) as watched:
        results = provider.generate(request, progress=watched)
    if watched.stop_requested:
        raise GenerationStopped
    if not results:
        raise PermanentProviderError("empty_result", _("The provider returned no images."))
    _finish(task, provider, results, failed=0)


def _submit(task: Task, provider: AsyncProvider, request: GenerationRequest) -> None:
    """Send the job once; from the vendor's first answer on, the task only watches it."""
    now = timezone.now()
    job: dict[str, Any] = {
        "state": {},
        "submitted_at": now.isoformat(),
        "deadline": (now + timedelta(seconds=provider.poll_deadline)).isoformat(),
        "interval": provider.poll_interval,
        "check_errors": 0,
    }

    def save(state: dict) -> None:
        job["state"] = state
        task.record_job(dict(job))

    logger.info("task %s submitting provider=%s attempt=%s", task.pk, task.provider, task.attempts)
    try:
        job["state"] = provider.submit(request, save)
    except TransientProviderError as error:
        if task.provider_job is None:
            raise  # nothing reached the vendor: an ordinary retry
        _look_again_later(task, job, error)  # part of it did: finish the submission by looking
        return
    _record_request_id(task, job["state"])
    if not task.watch_job(job, timezone.now() + timedelta(seconds=provider.poll_interval), progress=watch.LOW):
        _cancel_if_stopped(task, provider, job)


def _check(task: Task, provider: AsyncProvider, request: GenerationRequest) -> None:
    job = dict(task.provider_job or {})
    now = timezone.now()
    deadline = parse_datetime(str(job.get("deadline") or "")) or now

    def save(state: dict) -> None:
        job["state"] = state
        task.record_job(dict(job))

    try:
        result: JobCheck = provider.check_job(request, job.get("state") or {}, save)
    except TransientProviderError as error:
        if now >= deadline:
            _time_out(task, provider, job)
        else:
            _look_again_later(task, job, error)
        return
    if not result.finished:
        if now >= deadline:
            _time_out(task, provider, job)
            return
        interval = min(
            float(job.get("interval") or 1.0) * CHECK_INTERVAL_GROWTH, max(MAX_CHECK_INTERVAL, provider.poll_interval)
        )
        job["interval"] = interval
        job["queued"] = result.queued  # the card says "waiting in the provider's queue"
        if not task.watch_job(job, now + timedelta(seconds=interval), progress=watch.bar_percent(result.progress)):
            _cancel_if_stopped(task, provider, job)
        return
    try:
        _finish(task, provider, result.images, failed=result.failed)
    except TransientProviderError as error:
        # The job is done but a picture could not be fetched yet: look (and fetch) again.
        _look_again_later(task, job, error)


def _cancel_if_stopped(task: Task, provider: AsyncProvider, job: dict) -> None:
    """The owner stopped the task while this step submitted or looked at its job: services.
    cancel_task found no job to cancel yet (or this look raced it), so cancel it here."""
    if Task.objects.filter(pk=task.pk, status=Task.Status.CANCELED).exists():
        provider.cancel_job(job.get("state") or {})
        logger.info("task %s stopped during its step; vendor job canceled", task.pk)


def _look_again_later(task: Task, job: dict, error: TransientProviderError) -> None:
    job["check_errors"] = int(job.get("check_errors") or 0) + 1
    delay = backoff_seconds(job["check_errors"], error.retry_after)
    logger.info("task %s job check failed code=%s; looking again in %.1fs", task.pk, error.code, delay)
    task.watch_job(job, timezone.now() + timedelta(seconds=delay))


def _time_out(task: Task, provider: AsyncProvider, job: dict) -> None:
    provider.cancel_job(job.get("state") or {})
    seconds = f"{provider.poll_deadline:g}"
    _fail(task, "timeout", Reason(PROVIDER_MESSAGES["timeout.unfinished_after"], {"seconds": seconds}))


def _record_request_id(task: Task, state: dict) -> None:
    request_id = str(state.get("request_id") or "") if isinstance(state, dict) else ""
    if request_id:
        Task.objects.filter(pk=task.pk).update(provider_request_id=request_id[:128])


def _finish(task: Task, provider: Provider | AsyncProvider, results: list[GeneratedImage], *, failed: int) -> None:
    request_ids = [result.request_id for result in results if result.request_id]
    if request_ids:
        Task.objects.filter(pk=task.pk).update(provider_request_id=request_ids[0][:128])
    _progress(task, watch.HIGH)
    for result in results:
        if result.data is None and result.url:
            # Provider links expire within hours: fetch now, through the SSRF guard.
            result.data = download_image(result.url, provider.download_policy)
    note = None
    if failed:
        note = Reason(PARTIAL, {"failed": failed, "wanted": len(results) + failed})
    services.store_images(task, results, note=note)


def _progress(task: Task, percent: int) -> None:
    task.set_progress(percent)
    live.task_changed(task.owner_id)


# --- after a failure -------------------------------------------------------------------


def backoff_seconds(attempt: int, retry_after: float | None = None) -> float:
    """Exponential with jitter (half to all of base·2^(attempt−1)), at least Retry-After, capped."""
    ceiling = settings.PROVIDER_RETRY_BACKOFF_SECONDS * 2 ** max(0, attempt - 1)
    delay = random.uniform(ceiling / 2, ceiling)
    if retry_after:
        delay = max(delay, retry_after)
    return min(delay, settings.PROVIDER_RETRY_MAX_SECONDS)


def _after_transient(task: Task, error: TransientProviderError) -> None:
    if task.attempts >= settings.PROVIDER_MAX_ATTEMPTS:
        if not _fail_over(task, error):
            _fail(task, error.code, error.reason, error.request_id)
        return
    delay = backoff_seconds(task.attempts, error.retry_after)
    message = Reason(
        RETRYING,
        {
            "reason": error.reason,
            "delay": f"{delay:.0f}" if delay >= 10 else f"{delay:.1f}",
            "attempt": task.attempts + 1,
            "attempts": settings.PROVIDER_MAX_ATTEMPTS,
        },
    )
    if task.mark_retrying(error.code, message, timezone.now() + timedelta(seconds=delay)):
        logger.info("task %s retrying in %.1fs code=%s", task.pk, delay, error.code)


def _fail_over(task: Task, error: ProviderError) -> bool:
    """Move the task, once, to its provider's fallback; False when there is none to move to."""
    if task.failed_over_from:
        return False
    fallback = limits.limit_for(task.provider).fallback
    provider = get_provider(fallback.provider) if fallback else None
    if fallback is None or provider is None:
        return False
    model = next((info for info in provider.models() if info.id == fallback.model), None)
    if model is None:
        logger.warning("task %s fallback %s:%s is not offered; not moved", task.pk, *fallback.__dict__.values())
        return False
    moved_from = {
        "provider": task.provider,
        "model": task.model,
        "code": error.code,
        "reason": error.reason.as_json(),
        "attempts": task.attempts,
        "at": timezone.now().isoformat(),
    }
    if not task.move_to(fallback.provider, fallback.model, adapted_settings(task, model), moved_from):
        return False
    logger.info(
        "task %s failed over from %s to %s code=%s", task.pk, moved_from["provider"], fallback.provider, error.code
    )
    wake()
    return True


def adapted_settings(task: Task, model) -> dict:
    """The task's settings as the fallback model takes them: kept where it supports them."""
    changes: dict = {"num_images": max(1, min(task.num_images, model.max_images))}
    if not model.supports_negative_prompt:
        changes["negative_prompt"] = ""
    if not model.supports_steps or (
        model.steps_range and not model.steps_range[0] <= (task.steps or 0) <= model.steps_range[1]
    ):
        changes["steps"] = None
    if not model.supports_guidance or (
        model.guidance_range and not model.guidance_range[0] <= (task.guidance_scale or 0) <= model.guidance_range[1]
    ):
        changes["guidance_scale"] = None
    if not model.supports_seed or (task.seed is not None and not 0 <= task.seed <= model.max_seed):
        changes["seed"] = None
    if model.size_reason(task.width, task.height) is not None:
        changes["width"], changes["height"] = nearest_size(model, task.width, task.height)
    return changes


def nearest_size(model, width: int, height: int) -> tuple[int, int]:
    """The allowed size closest in shape and then in area to width×height."""
    if model.sizes:
        return min(
            model.sizes,
            key=lambda size: (abs(size[0] / size[1] - width / height), abs(size[0] * size[1] - width * height)),
        )
    step = model.size_multiple

    def fit(value: int) -> int:
        value = min(max(value, model.min_size), model.max_size)
        return max(model.min_size, value - value % step)

    return fit(width), fit(height)


def _fail(task: Task, code: str, message: Reason, request_id: str = "") -> None:
    if request_id:
        Task.objects.filter(pk=task.pk).update(provider_request_id=request_id[:128])
    if task.mark_failed(code, message):
        logger.info("task %s failed code=%s", task.pk, code)
