"""manage.py qcluster: django-q2's worker cluster, with Atelier's dispatcher in the main process.

The same command name and options as django-q2's (generator comes before django_q in
INSTALLED_APPS), so the Procfile, compose file and docs keep `manage.py qcluster`. django-q2's
own command starts the cluster and returns, leaving the main process idle until the sentinel
stops; here that process runs the dispatcher (generator.scheduler.dispatcher) meanwhile.
SIGTERM and SIGINT end the loop, then stop the cluster (django-q2 lets running tasks finish); they
also tell the workers to claim nothing more once their step ends (steps.stopping).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from typing import Any

from django.conf import settings
from django.db import connections
from django_q.cluster import Cluster
from django_q.management.commands import qcluster

from generator import jobs
from generator.scheduler import dispatcher, steps

logger = logging.getLogger(__name__)


class Command(qcluster.Command):
    help = "Starts the worker cluster and the dispatcher that wakes its workers when steps fall due."

    def handle(self, *args: Any, **options: Any) -> None:
        settings.SECRET_KEY  # noqa: B018 - the cluster signs its messages: fail now without one
        if options.get("cluster_name"):
            os.environ["Q_CLUSTER_NAME"] = options["cluster_name"]
        # Created before the cluster forks its workers, so they share it (django-q2 forks).
        steps.stopping = multiprocessing.get_context("fork").Event()
        cluster = Cluster()
        signalled = threading.Event()

        def stop(signum: int, frame: Any) -> None:
            # Only flags: the handler runs in the main thread, possibly inside one of the
            # dispatcher's transactions. Waiting for the cluster here (django-q2's own handler
            # does) would keep that transaction, and on SQLite its write lock, open while the
            # workers need it to finish their step: a deadlock until SIGKILL. The dispatcher's
            # loop sees the flag within a tick and the cluster is stopped after it.
            if steps.stopping is not None:
                steps.stopping.set()  # workers finish their step and claim nothing more
            signalled.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        cluster.start()
        # The catalogue check calls every provider (seconds, at worst each one's timeout): in
        # the background, so the dispatcher starts waking workers at once.
        threading.Thread(target=check_catalogue, name="atelier-catalogue", daemon=True).start()
        if not options.get("run_once", False):
            dispatcher.run(
                keep_going=lambda: (
                    not signalled.is_set() and cluster.sentinel is not None and cluster.sentinel.is_alive()
                )
            )
        connections.close_all()  # the dispatcher's connection: nothing of it stays open
        cluster.stop()


def check_catalogue() -> None:
    try:
        logger.info("provider catalogue: %s", jobs.check_providers())
    except Exception:
        logger.exception("provider catalogue check failed")
    finally:
        connections.close_all()  # this thread's own connections
