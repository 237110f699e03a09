"""Web requests and several worker processes writing at once on SQLite never fail."""

from __future__ import annotations

import concurrent.futures
import random

import pytest
from django.db import connection

from generator.models import Task
from tests.cluster import wait_for_final

from .factories import UserFactory
from .test_limits import api_session


@pytest.mark.cluster
def test_fifty_concurrent_requests_from_five_people_with_a_running_worker(live_server, start_qcluster, settings):
    settings.MAX_QUEUED_TASKS_PER_USER = 100
    settings.GENERATE_RATE = "100/m"
    start_qcluster(Q_WORKERS="2")
    people = [UserFactory() for _ in range(5)]
    sessions = [api_session(live_server, person) for person in people]
    body = {"prompt": "a kite over the dunes", "width": 256, "height": 256, "num_images": 2}
    rng = random.Random(7)

    def one_request(index: int) -> tuple[str, int]:
        session = sessions[index % 5]
        kind = rng.choice(["generate", "generate", "page", "gallery", "history", "poll"])
        if kind == "generate":
            return kind, session.post(live_server.url + "/api/v1/generate", json=body, timeout=60).status_code
        if kind == "poll":
            task = Task.objects.filter(owner=people[index % 5]).first()
            connection.close()  # this pool thread's own connection: leave none open
            url = f"/api/v1/task/{task.pk}" if task else "/api/v1/models"
            return kind, session.get(live_server.url + url, timeout=60).status_code
        path = {"page": "/", "gallery": "/gallery/", "history": "/history/"}[kind]
        return kind, session.get(live_server.url + path, timeout=60).status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(one_request, range(50)))

    failures = [(kind, code) for kind, code in results if code not in (200, 201)]
    assert failures == []
    created = Task.objects.all()
    assert created.count() == sum(1 for kind, _ in results if kind == "generate")
    for task in created:
        final = wait_for_final(task, timeout=60)
        assert final.status == Task.Status.COMPLETED, (final.error_code, final.error_message)
