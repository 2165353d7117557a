"""Recovery: a timer in every worker process that finds jobs nobody is running and queues them
again. Two cases:
  - a queued job whose message is gone (the broker lost it, or the send failed while the
    broker was down): sent again once it is older than GRO_REQUEUE_AFTER_S and its message is
    neither waiting in a queue nor held by a worker;
  - a running job whose heartbeat stopped (its worker was killed): put back to queued, to
    resume from its last checkpoint, with an event that says so; after GRO_MAX_REQUEUES such
    losses it fails with `worker_lost` instead.
Each change is a conditional update, so reconcilers of several workers never both act.
"""

from __future__ import annotations

import logging
import threading
from typing import ClassVar

from server.config import Settings
from server.db import jobs as db_jobs
from server.db.session import session_scope
from server.queue import CeleryQueue, JobQueue
from server.services.jobs import enqueue

log = logging.getLogger("gro.worker")


def reconcile(settings: Settings, queue: JobQueue) -> list[str]:
    """One pass; the ids of the jobs sent again (the broker took them)."""
    url = settings.database_url
    with session_scope(url) as session:
        dead = db_jobs.requeue_dead(
            session, db_jobs.ago(settings.heartbeat_timeout_s), settings.max_requeues
        )
    cutoff = db_jobs.ago(settings.requeue_after_s)
    pending = queue.pending_job_ids()
    with session_scope(url) as session:
        lost = [
            job
            for job in db_jobs.lost_queued(session, cutoff)
            if (pending is None or job.id not in pending)
            and db_jobs.take_resend(session, job.id, cutoff)
        ]
        for job in lost:
            db_jobs.add_event(session, job.id, "resent", "its message was lost; sent again")
    sent, failed = [], []
    for job in [*dead, *lost]:
        with session_scope(url) as session:
            (sent if enqueue(session, queue, job) else failed).append(job.id)
    if sent:
        log.info("reconciler sent again: %s", ", ".join(sent))
    if failed:  # still queued and marked unsent: a later pass tries again
        log.warning("reconciler could not send again (broker down?): %s", ", ".join(failed))
    return sent


class Reconciler:
    """The timer thread; one per worker process."""

    _running: ClassVar[Reconciler | None] = None

    def __init__(self, settings: Settings, queue: JobQueue) -> None:
        self.settings, self.queue = settings, queue
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True, name="reconciler")

    def _loop(self) -> None:
        while not self.stopped.wait(self.settings.reconcile_every_s):
            try:
                reconcile(self.settings, self.queue)
            except Exception:  # the database or broker is down: try again next tick
                log.exception("reconciler pass failed")

    @classmethod
    def start_for_worker(cls, settings: Settings) -> None:
        if cls._running is None:
            cls._running = cls(settings, CeleryQueue(settings.broker_url))
            cls._running.thread.start()

    @classmethod
    def stop_for_worker(cls) -> None:
        if cls._running is not None:
            cls._running.stopped.set()
            cls._running = None
