"""Claims from many workers at once: never the same task twice, never past a provider's limit.

Threads stand in for workers on other machines: each has its own database connection, so the
claims really race (IMMEDIATE transactions on SQLite; the advisory lock and SKIP LOCKED on
PostgreSQL under `make test-scale`).
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from generator.models import Task
from generator.scheduler import claim

from .factories import TaskFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def race(workers: int) -> list[Task]:
    """Every worker claims until nothing may run; all claims made, in any order."""
    taken: list[Task] = []
    lock = threading.Lock()
    start = threading.Barrier(workers)

    def worker(name: str) -> None:
        try:
            start.wait()
            while (task := claim.claim_next(name)) is not None:
                with lock:
                    taken.append(task)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return taken


def test_racing_workers_take_each_task_once_and_never_pass_the_concurrency(settings):
    settings.PROVIDER_LIMITS = {"offline": {"CONCURRENCY": 5, "RATE": "", "FALLBACK": ""}}
    people = [UserFactory() for _ in range(4)]
    for n in range(40):
        TaskFactory(owner=people[n % 4])

    rounds = []
    while Task.objects.filter(status="pending").exists():
        taken = race(workers=8)
        rounds.append(len(taken))
        assert len({task.pk for task in taken}) == len(taken), "a task was claimed twice"
        assert Task.objects.filter(status="processing").count() == len(taken) <= 5
        assert {task.held_by for task in taken} <= {f"w{n}" for n in range(8)}
        Task.objects.filter(status="processing").update(status="completed", held_by="")
        assert len(rounds) <= 8, rounds

    assert rounds == [5] * 8
    assert Task.objects.filter(status="completed", attempts=1).count() == 40


def test_racing_workers_share_a_round_fairly_between_people(settings):
    settings.PROVIDER_LIMITS = {"offline": {"CONCURRENCY": 4, "RATE": "", "FALLBACK": ""}}
    people = [UserFactory() for _ in range(4)]
    for person in people:
        for _ in range(5):
            TaskFactory(owner=person)

    taken = race(workers=6)

    assert sorted(task.owner_id for task in taken) == sorted(person.pk for person in people)
