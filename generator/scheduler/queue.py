"""Queue messages: permissions for a free worker to claim the next runnable task.

A message names no task, so a duplicate is harmless (the claim finds nothing or something
else) and a lost one only delays work until the dispatcher's next look.
"""

from __future__ import annotations

from django_q.brokers import Broker, get_broker
from django_q.conf import Conf
from django_q.tasks import async_task

DISPATCH = "generator.jobs.dispatch"


def wake(count: int = 1, broker: Broker | None = None) -> None:
    """Ask `count` free workers to claim work. django-q2 keeps no result for these.

    A long-lived caller (the dispatcher) passes its broker: each new one opens a connection.
    """
    for _ in range(count):
        if broker is None:
            async_task(DISPATCH, task_name="dispatch", save=False)
        else:
            async_task(DISPATCH, task_name="dispatch", save=False, broker=broker)


def wake_unless_queued() -> None:
    """One message for a new task, unless enough already wait for the workers: every message
    makes a worker claim (and, on SQLite, take the write lock), and one claim serves any task."""
    if Conf.SYNC or queued_messages() < Conf.WORKERS:
        wake()


def queued_messages(broker: Broker | None = None) -> int:
    """Messages waiting on the broker for a worker (ORM or Redis)."""
    return (broker or get_broker()).queue_size()


def connect() -> Broker:
    return get_broker()
