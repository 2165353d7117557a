"""The Celery app workers run: `celery -A worker.celery_app worker -Q train --pool solo`.

Queues: `train` (GPU work: one task at a time per worker, one worker per GPU) and `light`
(evaluations, dataset processing). There is no result backend: the database is the source of
truth, and tasks report through it.
"""

from __future__ import annotations

from celery import Celery
from celery.signals import worker_ready, worker_shutting_down
from kombu import Queue

from server.config import get_settings
from server.queue import LIGHT_QUEUE, TRAIN_QUEUE
from worker.reconcile import Reconciler
from worker.supervise import start_fork_server

# A job is claimed by a conditional update, so a message delivered twice is harmless; what
# matters is that no message is lost. Redis redelivers an unacknowledged message after the
# visibility timeout: long, so a running job's message is not handed to a second worker
# while the first still holds it (and if it were, the claim would refuse it).
VISIBILITY_TIMEOUT_S = 6 * 3600


def make_app(broker_url: str | None = None) -> Celery:
    app = Celery("gro", broker=broker_url or get_settings().broker_url, include=["worker.tasks"])
    app.conf.update(
        task_queues=[Queue(TRAIN_QUEUE), Queue(LIGHT_QUEUE)],
        task_default_queue=TRAIN_QUEUE,
        task_acks_late=True,  # acknowledged after the task ran: a crash leaves it queued
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # a GPU worker holds one job, not a backlog
        worker_concurrency=1,
        task_ignore_result=True,
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_S},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    return app


app = make_app()


@worker_ready.connect
def _start_reconciler(sender: object = None, **_: object) -> None:
    settings = get_settings()
    if settings.job_isolation == "process":
        start_fork_server()
    Reconciler.start_for_worker(settings)


@worker_shutting_down.connect
def _stop_reconciler(**_: object) -> None:
    Reconciler.stop_for_worker()
