"""Live updates: what changed for whom, so that open pages hear of it at once.

Every code path that changes what a person sees of a task (status, progress, images, a note)
calls task_changed() with the task's owner after its write is committed.
"""

from __future__ import annotations


def task_changed(owner_id: int) -> None:
    """Tell the owner's open pages that one of their tasks changed (after the write commits)."""
