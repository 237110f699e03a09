"""Worker faults with real `manage.py qcluster` processes: a killed cluster and a stopped one.

SIGKILL leaves the task `processing`, held by a worker that no longer beats; any cluster's
dispatcher (or the sweeper) takes it back once its heartbeat is older than
HEARTBEAT_TIMEOUT_SECONDS. SIGTERM is graceful: django-q2 lets the running task finish before
it exits.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from generator import services
from generator.models import Image, Task
from generator.scheduler.recovery import recover_tasks
from generator.services import TaskSettings

from .cluster import QCluster, _report, launch_qcluster, wait_for_final
from .factories import UserFactory

pytestmark = pytest.mark.cluster

BEAT, BEAT_TIMEOUT = 1, 4  # seconds: a hold not renewed for 4 s has no live worker
HEARTBEATS = {"HEARTBEAT_SECONDS": BEAT, "HEARTBEAT_TIMEOUT_SECONDS": BEAT_TIMEOUT}


@pytest.fixture
def fault_limits(settings) -> None:
    settings.HEARTBEAT_SECONDS = BEAT
    settings.HEARTBEAT_TIMEOUT_SECONDS = BEAT_TIMEOUT


@pytest.fixture
def start_doomed_qcluster(start_qcluster, settings, tmp_path, request) -> Iterator[Callable[..., QCluster]]:
    """Like start_qcluster, for a cluster the test will SIGKILL (start_qcluster's teardown would
    count the -9 exit as a failure). Depends on start_qcluster for its database and for this
    process's async_task going to the broker."""
    clusters: list[QCluster] = []
    failed_before = request.session.testsfailed

    def start(**env: object) -> QCluster:
        cluster = launch_qcluster(media_root=settings.MEDIA_ROOT, work_dir=tmp_path / "qcluster", **env)
        clusters.append(cluster)
        return cluster

    yield start

    for cluster in clusters:
        cluster.stop()
    if request.session.testsfailed > failed_before:
        for cluster in clusters:
            _report(request, f"killed qcluster pid {cluster.pid} output ({cluster.log_path})", cluster.output())


def kill_hard(cluster: QCluster) -> None:
    """SIGKILL the cluster's whole process group (sentinel, pusher, monitor, workers) at once."""
    os.killpg(cluster.pid, signal.SIGKILL)
    cluster.process.wait(timeout=10)
    deadline = time.monotonic() + 10
    while True:  # the workers are gone too, not only the main process
        try:
            os.killpg(cluster.pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "processes of the killed cluster are still alive"
        time.sleep(0.05)
    cluster.stop()  # nothing left to signal; forget it, so wait_for_final only looks at live ones


def wait_for_status(task: Task, status: str, timeout: float = 15.0) -> Task:
    deadline = time.monotonic() + timeout
    while (current := Task.objects.get(pk=task.pk)).status != status:
        assert current.status not in ("completed", "failed", "canceled"), (current.status, current.error_message)
        assert time.monotonic() < deadline, f"task never reached {status!r}; still {current.status!r}"
        time.sleep(0.02)
    return current


def wait_until_hold_is_stale(task: Task) -> None:
    """Poll the clock until the task's last heartbeat is older than the heartbeat timeout."""
    stale_at = Task.objects.get(pk=task.pk).heartbeat_at + timedelta(seconds=BEAT_TIMEOUT)
    while timezone.now() <= stale_at:
        time.sleep(0.05)


def create(num_images: int = 2) -> Task:
    return services.create_task(
        UserFactory(),
        TaskSettings(
            prompt="a lighthouse on a cliff at dawn, oil painting",
            provider="offline",
            model="sketch-v1",
            width=256,
            height=192,
            num_images=num_images,
            seed=1234,
        ),
    )


def assert_files_match_rows(task: Task, media_root: Path) -> None:
    """Every Image row's files exist, and nothing else is stored."""
    expected = set()
    for image in Image.objects.filter(task=task):
        for name in (image.file.name, image.thumbnail.name):
            assert (Path(media_root) / name).is_file(), name
            expected.add(Path(media_root) / name)
    stored = {path for path in Path(media_root).rglob("*") if path.is_file()}
    assert stored == expected


def test_a_task_whose_cluster_was_killed_is_taken_back_and_completed_by_a_new_one(
    start_doomed_qcluster, start_qcluster, fault_limits, media_root
):
    doomed = start_doomed_qcluster(OFFLINE_DELAY_SECONDS=3, **HEARTBEATS)
    task = create(num_images=2)
    task = wait_for_status(task, "processing")
    deadline = time.monotonic() + 2.5  # the worker beats while it draws (3 s)
    while not ((held := Task.objects.get(pk=task.pk)).heartbeat_at > held.claimed_at):
        assert time.monotonic() < deadline, "the holding worker never beat"
        time.sleep(0.05)
    assert held.held_by and held.status == "processing"

    kill_hard(doomed)  # mid-generation: the provider is still drawing, nothing stored yet
    killed_at = time.monotonic()
    task = Task.objects.get(pk=task.pk)
    assert (task.status, task.attempts) == ("processing", 1)  # held by a worker that is gone
    # Within the heartbeat timeout the hold still counts as alive...
    assert recover_tasks(now=task.heartbeat_at + timedelta(seconds=BEAT_TIMEOUT), dry_run=True).total == 0
    # ...past it, the new cluster's dispatcher takes the task back by itself and runs it again.
    start_qcluster(**HEARTBEATS)

    task = wait_for_final(task, timeout=30)
    taken_back_within = time.monotonic() - killed_at
    assert task.status == Task.Status.COMPLETED, (task.error_code, task.error_message)
    assert task.attempts == 2 and task.error_code == "" and task.progress == 100
    assert taken_back_within < BEAT_TIMEOUT + 3 + 10  # timeout, drawing (3 s), cluster start
    assert [image.index for image in task.ordered_images] == [0, 1]
    assert_files_match_rows(task, media_root)
    assert len(list(Path(media_root).rglob("*.png"))) == 2


def test_a_task_whose_cluster_was_killed_on_its_last_attempt_fails_as_worker_lost(
    start_doomed_qcluster, fault_limits, settings, media_root
):
    settings.PROVIDER_MAX_ATTEMPTS = 1
    doomed = start_doomed_qcluster(OFFLINE_DELAY_SECONDS=3, PROVIDER_MAX_ATTEMPTS=1, **HEARTBEATS)
    task = create(num_images=1)
    task = wait_for_status(task, "processing")

    kill_hard(doomed)
    wait_until_hold_is_stale(task)
    report = recover_tasks()

    assert report.failed == [task.pk] and report.retrying == [] and report.resumed == []
    task = wait_for_final(task, timeout=1)
    assert task.status == Task.Status.FAILED
    assert task.error_code == "worker_lost"
    assert task.error_message == "The worker stopped while generating; please retry."
    assert task.attempts == 1 and task.finished_at is not None
    assert not Image.objects.filter(task=task).exists()
    assert_files_match_rows(task, media_root)  # nothing stored


def test_sigterm_lets_the_running_task_finish_before_the_cluster_exits(start_qcluster, media_root):
    cluster = start_qcluster(OFFLINE_DELAY_SECONDS=2)
    task = create(num_images=2)
    wait_for_status(task, "processing")

    signalled_at = timezone.now()
    code = cluster.stop()  # SIGTERM, then waits (SIGKILL only after a 15 s grace)

    assert code in (0, -signal.SIGTERM)
    task = Task.objects.get(pk=task.pk)  # no worker is left: whatever it is now, it stays
    assert task.status == Task.Status.COMPLETED, (task.status, task.error_message, cluster.output()[-3000:])
    assert task.finished_at > signalled_at  # it really was mid-task when the signal came
    assert task.attempts == 1
    assert_files_match_rows(task, media_root)
    assert Image.objects.filter(task=task).count() == 2


def test_sigterm_finishes_the_running_step_and_claims_nothing_more(start_qcluster, media_root):
    cluster = start_qcluster(OFFLINE_DELAY_SECONDS=2, Q_WORKERS=1)
    first = create(num_images=1)
    wait_for_status(first, "processing")
    waiting = [create(num_images=1) for _ in range(3)]

    code = cluster.stop()  # SIGTERM: without the stop flag the worker would go on claiming for minutes

    assert code in (0, -signal.SIGTERM)
    assert Task.objects.get(pk=first.pk).status == Task.Status.COMPLETED
    assert [Task.objects.get(pk=task.pk).status for task in waiting] == ["pending"] * 3
