"""Per-person quotas: images per day, images per month, spend per month.

services.create_task calls check() under the owner's lock, so concurrent submissions cannot
slip past a quota together. A refusal raises QuotaExceeded before anything is sent.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from generator.limits import Exceeded

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from generator.services import TaskSettings


class QuotaExceeded(Exception):
    """A submission over a quota: what to render (reason "quota_exceeded"), which quota and
    when it resets."""

    def __init__(self, exceeded: Exceeded, kind: str, resets_at: datetime) -> None:
        super().__init__(exceeded.message)
        self.exceeded = exceeded
        self.kind = kind
        self.resets_at = resets_at


def check(owner: User, task_settings: TaskSettings) -> None:
    """Raise QuotaExceeded when this submission would take the owner past a quota."""
