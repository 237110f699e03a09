"""What the API says about a task and an image: plain dicts for JsonResponse."""

from __future__ import annotations

from datetime import datetime
from operator import attrgetter

from ..models import Image, Task


def isoformat(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def image_json(image: Image, *, with_tags: bool = False) -> dict:
    data = {
        "image_id": str(image.pk),
        "url": image.url,
        "thumbnail_url": image.thumbnail_url,
        "width": image.width,
        "height": image.height,
        "file_size": image.bytes,
        "seed": image.seed,
    }
    if with_tags:  # the image list: enough to find the picture again without its task
        data.update(
            task_id=str(image.task_id),
            prompt=image.task.prompt,
            is_favorite=image.is_favorite,
            tags=sorted(tag.name for tag in image.tags.all()),
            created_at=isoformat(image.created_at),
        )
    return data


def task_json(task: Task, images: list[Image] | None = None) -> dict:
    """`images`: the task's, read apart (else they come from task.images)."""
    shown = (
        (task.ordered_images if images is None else sorted(images, key=attrgetter("index"))) if task.is_finished else []
    )
    return {
        "task_id": str(task.pk),
        "status": task.status,
        "progress": task.progress,
        **task.parameters(),
        # The prompt as typed when the prompt helper (optimize_prompt) or a preset changed it.
        "original_prompt": task.original_prompt or None,
        # Images are stored in the transaction that completes the task: an unfinished one has
        # none, and its poll (the API's most frequent request) need not ask.
        "images": [image_json(image) for image in shown],
        "error": {"code": task.error_code, "message": task.error_text} if task.status == Task.Status.FAILED else None,
        "created_at": isoformat(task.created_at),
        "started_at": isoformat(task.started_at),
        "completed_at": isoformat(task.finished_at),
        # Seconds a task like this usually takes (recent ones on its provider and model), while it
        # has not finished; null without history and once finished.
        "estimated_time": task.estimated_time,
        # The style preset applied (its name as recorded; id null once the preset is deleted).
        "preset": {"id": task.preset_id, "name": task.preset_name} if task.preset_name else None,
    }
