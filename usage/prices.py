"""Prices per image (ModelPrice) and what a task's pictures cost."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from generator.models import Task


def cost_of(task: Task, images: int) -> tuple[Decimal | None, str]:
    """What `images` pictures of the task's provider model cost, and the currency; (None, "")
    when no price is known."""
    return None, ""
