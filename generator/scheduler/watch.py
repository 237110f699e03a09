"""A synchronous call's live side: the progress and preview its provider reports, and the Stop
its owner presses, while the worker waits for the answer.

The provider records what it learns from any thread (LiveProgress is the LiveReport of
generator.providers.base); a thread of the worker writes it every PROGRESS_SECONDS with one
conditional UPDATE that also tells whether the task is still this worker's. When it is not
(the owner stopped it: Task.cancel), `stop_requested` turns true, so a provider that can stop
(the WebUI's /sdapi/v1/interrupt, the offline sketcher between pictures) does, and the step
keeps nothing of what comes back. Nothing here may fail a task: a write that fails is logged.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DatabaseError, close_old_connections, connection

from .. import live, progress
from ..models import Task

logger = logging.getLogger(__name__)

# How often the worker writes progress and looks for a Stop while a call runs.
PROGRESS_SECONDS = 0.5
# The share of the bar a provider's own 0–100 % fills: the rest is waiting and storing.
LOW, HIGH = 10, 85


def bar_percent(provider_percent: int) -> int:
    """A provider's 0–100 % as the task's progress bar shows it (LOW to HIGH)."""
    return LOW + max(0, min(100, int(provider_percent))) * (HIGH - LOW) // 100


class LiveProgress:
    """Handed to Provider.generate() as `progress` (see the module docstring)."""

    def __init__(self, task: Task, *, threaded: bool) -> None:
        self.task = task
        self.threaded = threaded
        self._owner_thread = threading.get_ident()
        self._lock = threading.Lock()
        self._percent: int | None = None  # reported, not yet written
        self._picture: bytes | None = None
        self._written = task.progress
        self._stop = threading.Event()
        self.had_preview = False

    # --- the provider's side (any thread) -------------------------------------------------

    def __call__(self, percent: int) -> None:
        value = bar_percent(percent)
        with self._lock:
            if value > max(self._percent or 0, self._written):
                self._percent = value
        self._flush_if_inline()

    def preview(self, image: bytes) -> None:
        with self._lock:
            self._picture = image
        self._flush_if_inline()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    # --- the worker's side --------------------------------------------------------------------

    def _flush_if_inline(self) -> None:
        # Without the thread (django-q2's sync mode: tests, the inline runner) the caller's own
        # thread writes; a provider's helper thread only records, for the final flush.
        if not self.threaded and threading.get_ident() == self._owner_thread:
            self.flush()

    def flush(self, *, look: bool = False) -> None:
        """Write what was reported; with `look`, also find out whether the task is still held."""
        with self._lock:
            percent, picture = self._percent, self._picture
            self._percent = self._picture = None
        changed = False
        try:
            if percent is not None:
                if self.task.report_progress(percent):
                    self._written, changed = percent, True
                else:
                    self._stopped()
            elif look and not self._stop.is_set() and not self.task.is_held():
                self._stopped()
        except DatabaseError:
            logger.warning("task %s progress not recorded", self.task.pk, exc_info=True)
            close_old_connections()
        if picture is not None and not self._stop.is_set():
            try:
                if progress.store_preview(self.task.pk, picture):
                    self.had_preview = changed = True
            except Exception:  # a cache that is down costs the preview, not the task
                logger.warning("task %s preview not stored", self.task.pk, exc_info=True)
        if changed:  # open pages hear of it (at once: nothing here runs in a transaction)
            live.task_changed(self.task.owner_id)

    def discard_preview(self) -> None:
        with self._lock:
            self._picture = None

    def _stopped(self) -> None:
        if not self._stop.is_set():
            logger.info("task %s was stopped while generating", self.task.pk)
        self._stop.set()

    def run(self, done: threading.Event) -> None:
        try:
            while not done.wait(PROGRESS_SECONDS):
                self.flush(look=True)
        finally:
            connection.close()  # this thread's own connection


@contextmanager
def watching(task: Task, *, threaded: bool = True) -> Iterator[LiveProgress]:
    """A LiveProgress for the block, written from a thread while it runs (when `threaded`) and
    once more at its end; afterwards `stop_requested` says whether the task was stopped."""
    reporter = LiveProgress(task, threaded=threaded)
    done = threading.Event()
    thread = None
    if threaded:
        thread = threading.Thread(target=reporter.run, args=(done,), name=f"progress-{task.pk}", daemon=True)
        thread.start()
    try:
        yield reporter
    finally:
        done.set()
        if thread is not None:
            thread.join(timeout=PROGRESS_SECONDS + 10)
        reporter.discard_preview()  # the call is over: a picture now would only be removed again
        reporter.flush(look=True)
        if reporter.had_preview:
            try:
                progress.forget_preview(task.pk)
            except Exception:
                logger.warning("task %s preview not removed", task.pk, exc_info=True)
