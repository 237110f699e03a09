"""Queue messages: permissions for a free worker to claim the next runnable task.

A message names no task, so a duplicate is harmless (the claim finds nothing or something
else) and a lost one only delays work until the dispatcher's next look.
"""

from __future__ import annotations

import os

from django_q.brokers import Broker, get_broker
from django_q.conf import Conf
from django_q.tasks import async_task

DISPATCH = "generator.jobs.dispatch"


def wake(count: int = 1, broker: Broker | None = None) -> None:
    """Ask `count` free workers to claim work. django-q2 keeps no result for these."""
    for _ in range(count):
        async_task(DISPATCH, task_name="dispatch", save=False, broker=broker or shared_broker())


def wake_unless_queued() -> None:
    """One message for a new task, unless enough already wait for the workers: every message
    makes a worker claim (and, on SQLite, take the write lock), and one claim serves any task."""
    if Conf.SYNC or queued_messages() < Conf.WORKERS:
        wake()


def queued_messages(broker: Broker | None = None) -> int:
    """Messages waiting on the broker for a worker (ORM or Redis)."""
    return (broker or shared_broker()).queue_size()


_SHARED: dict[int, Broker] = {}


def shared_broker() -> Broker:
    """This process's broker for every new task's message. A new broker per call (django-q2's
    default) opened a Redis connection each time, two per submitted task: some 4 ms of its
    10 ms queue overhead. A forked process makes its own; redis-py's pool is thread-safe and
    reconnects after a lost connection."""
    pid = os.getpid()
    broker = _SHARED.get(pid)
    if broker is None:
        _SHARED.clear()
        broker = _SHARED[pid] = get_broker()
    return broker


def connect() -> Broker:
    return get_broker()
