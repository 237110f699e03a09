"""What a generating task shows besides its percentage: the provider's live preview and an
estimate of how long it takes.

Both live in the shared cache (the one the web server and the workers use, config/settings.py),
not in the database: a preview is rewritten every second or two while a task runs and is worth
nothing once it ends; an estimate is one aggregate query per provider and model a minute.
"""

from __future__ import annotations

import hashlib
import io
import logging
import statistics

from django.apps import apps
from django.core.cache import cache
from PIL import Image as PILImage

logger = logging.getLogger(__name__)

# A preview is shown in the task card only: small, and gone soon after the task ends.
PREVIEW_MAX_SIDE = 384
PREVIEW_QUALITY = 70
PREVIEW_TIMEOUT = 15 * 60
# The estimate: the median of this many recent completed tasks, recomputed this often.
ESTIMATE_SAMPLE = 20
ESTIMATE_TIMEOUT = 60


def _preview_key(task_id: object) -> str:
    return f"task-preview:{task_id}"


def store_preview(task_id: object, data: bytes) -> bool:
    """Keep a provider's in-progress picture (any format Pillow reads) as a small WebP.

    False when it could not be read: a preview is a nicety, never a reason to fail."""
    try:
        with PILImage.open(io.BytesIO(data)) as picture:
            picture.thumbnail((PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE))
            out = io.BytesIO()
            picture.convert("RGB").save(out, "WEBP", quality=PREVIEW_QUALITY)
    except Exception:  # whatever a provider sends, the task goes on
        logger.info("task %s preview could not be read", task_id)
        return False
    cache.set(_preview_key(task_id), out.getvalue(), timeout=PREVIEW_TIMEOUT)
    return True


def preview(task_id: object) -> bytes | None:
    return cache.get(_preview_key(task_id))


def has_preview(task_id: object) -> bool:
    return cache.has_key(_preview_key(task_id))


def forget_preview(task_id: object) -> None:
    cache.delete(_preview_key(task_id))


def estimated_seconds(provider: str, model: str) -> float | None:
    """How long a task on this provider and model usually takes, start to finish, in seconds:
    the median of its last ESTIMATE_SAMPLE completed tasks (anyone's), or None without any.

    One query, cached for ESTIMATE_TIMEOUT seconds per provider and model."""
    key = _estimate_key(provider, model)
    cached = cache.get(key)
    if isinstance(cached, dict):
        return cached.get("seconds")
    # By name: generator.models imports this module for its properties.
    Task = apps.get_model("generator", "Task")
    rows = (
        Task.objects.filter(
            status=Task.Status.COMPLETED,
            provider=provider,
            model=model,
            started_at__isnull=False,
            finished_at__isnull=False,
        )
        .order_by("-finished_at")
        .values_list("started_at", "finished_at")[:ESTIMATE_SAMPLE]
    )
    durations = [(finished - started).total_seconds() for started, finished in rows if started and finished]
    seconds = round(statistics.median(durations), 1) if durations else None
    cache.set(key, {"seconds": seconds}, timeout=ESTIMATE_TIMEOUT)
    return seconds


def forget_estimate(provider: str, model: str) -> None:
    cache.delete(_estimate_key(provider, model))


def _estimate_key(provider: str, model: str) -> str:
    return "task-estimate:" + hashlib.sha256(f"{provider}\x1f{model}".encode()).hexdigest()[:32]
