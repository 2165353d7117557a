"""The broker, seen from the API: enqueue a job by task *name* (the API never imports worker
code), check the broker is reachable, and read queue depths for /metrics and the reconciler.

Task names and queues are the contract with `worker/`:
  gro.train    on queue `train` (GPU work, one task per GPU)
  gro.evaluate on queue `light` (evaluations, dataset processing)
  gro.generate on queue `light` (the playground's generations)
"""

from __future__ import annotations

import ast
import json
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import redis
    from celery import Celery

TRAIN_TASK, EVALUATE_TASK, GENERATE_TASK = "gro.train", "gro.evaluate", "gro.generate"
TRAIN_QUEUE, LIGHT_QUEUE = "train", "light"
TASK_FOR_KIND = {
    "train": (TRAIN_TASK, TRAIN_QUEUE),
    "evaluation": (EVALUATE_TASK, LIGHT_QUEUE),
    "generation": (GENERATE_TASK, LIGHT_QUEUE),
}


class JobQueue(Protocol):
    def enqueue(self, job_id: str, kind: str) -> None:
        """Send the job's task; raises when the broker cannot take it."""

    def ping(self) -> bool:
        """Whether the broker answers."""

    def depths(self) -> dict[str, int]:
        """Messages waiting per queue."""

    def pending_job_ids(self) -> set[str] | None:
        """Jobs with a message waiting or delivered but unacknowledged; None if unknown."""


class CeleryQueue:
    """A Celery *client* on the broker: it sends tasks by name and never runs them."""

    def __init__(self, broker_url: str) -> None:
        self.broker_url = broker_url

    @cached_property
    def app(self) -> Celery:
        from celery import Celery

        app = Celery("gro-api", broker=self.broker_url)
        app.conf.update(
            broker_connection_retry_on_startup=False,
            broker_connection_timeout=2,
            # A submit must not hang on a dead broker: fail fast, the reconciler retries.
            broker_transport_options={
                "max_retries": 1,
                "socket_timeout": 2,
                "socket_connect_timeout": 2,
            },
            task_default_queue=TRAIN_QUEUE,
        )
        return app

    def enqueue(self, job_id: str, kind: str) -> None:
        name, queue = TASK_FOR_KIND[kind]
        self.app.send_task(
            name,
            args=[job_id],
            queue=queue,
            retry=True,
            retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.2},
        )

    def _redis(self) -> redis.Redis:
        import redis

        return redis.Redis.from_url(self.broker_url, socket_timeout=2, socket_connect_timeout=2)

    def ping(self) -> bool:
        try:
            return bool(self._redis().ping())
        except Exception:  # any failure (refused, timeout, auth) means "not ready"
            return False

    def depths(self) -> dict[str, int]:
        client = self._redis()
        return {q: int(client.llen(q)) for q in (TRAIN_QUEUE, LIGHT_QUEUE)}

    def pending_job_ids(self) -> set[str] | None:
        # Celery's Redis transport keeps waiting messages in one list per queue and delivered,
        # unacknowledged ones in the `unacked` hash; both hold the task's args.
        try:
            client = self._redis()
            raw = [m for q in (TRAIN_QUEUE, LIGHT_QUEUE) for m in client.lrange(q, 0, -1)]
            raw += list(client.hvals("unacked"))
        except Exception:  # the broker is not Redis, or is down: the caller falls back
            return None
        return {job for message in raw if (job := _job_id_of(message))}


def _job_id_of(message: bytes) -> str | None:
    """The job id a Celery message carries (`argsrepr` header, or the body's args)."""
    try:
        payload = json.loads(message)
        if isinstance(payload, list):  # `unacked` stores [message, exchange, routing_key]
            payload = payload[0]
        args = ast.literal_eval(payload["headers"]["argsrepr"])
        return str(args[0]) if args else None
    except (ValueError, SyntaxError, KeyError, TypeError, IndexError):
        return None


class RecordingQueue:
    """A queue that keeps what it is sent, for tools that run jobs in-process and for tests."""

    def __init__(self, *, reachable: bool = True) -> None:
        self.sent: list[tuple[str, str]] = []
        self.reachable = reachable

    def enqueue(self, job_id: str, kind: str) -> None:
        if not self.reachable:
            raise ConnectionError("broker unreachable")
        self.sent.append((job_id, kind))

    def ping(self) -> bool:
        return self.reachable

    def depths(self) -> dict[str, int]:
        return {
            q: sum(TASK_FOR_KIND[k][1] == q for _, k in self.sent)
            for q in (TRAIN_QUEUE, LIGHT_QUEUE)
        }

    def pending_job_ids(self) -> set[str] | None:
        return {job for job, _ in self.sent}
