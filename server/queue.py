"""The broker, seen from the API: enqueue a job by task *name* (the API never imports worker
code), check the broker is reachable, and read queue depths for /metrics and the reconciler.

Task names and queues are the contract with `worker/`:
  gro.train    on queue `train` (a one-process job: any worker takes it), or `train-N` for a
               job of N processes per machine (resources.nproc_per_node): a worker offering
               P processes (`gro worker --procs P`) takes `train-2` ... `train-P` as well
  gro.join     on the job's queue: a job of resources.nnodes > 1 asks that many workers in
               all; its first worker sends one `gro.join` per other machine it needs
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
JOIN_TASK = "gro.join"
TRAIN_QUEUE, LIGHT_QUEUE = "train", "light"
TASK_FOR_KIND = {
    "train": (TRAIN_TASK, TRAIN_QUEUE),
    "evaluation": (EVALUATE_TASK, LIGHT_QUEUE),
    "generation": (GENERATE_TASK, LIGHT_QUEUE),
}
MAX_PROCS = 64  # the most processes per machine a queue exists for (the limit's ceiling too)


def train_queue(procs: int) -> str:
    """The queue of a training job with `procs` processes per machine."""
    return TRAIN_QUEUE if procs <= 1 else f"{TRAIN_QUEUE}-{procs}"


def worker_queues(procs: int) -> list[str]:
    """The training queues a worker offering `procs` processes takes jobs from: every job
    that fits, a one-process job included."""
    return [train_queue(n) for n in range(1, min(procs, MAX_PROCS) + 1)]


def queue_for(kind: str, procs: int = 1) -> tuple[str, str]:
    """(task name, queue) of a job of `kind` with `procs` processes per machine."""
    task, queue = TASK_FOR_KIND[kind]
    return task, train_queue(procs) if kind == "train" else queue


def procs_of(document: dict) -> int:
    """Processes per machine a stored job document asks for (resources.nproc_per_node)."""
    resources = document.get("resources") or {}
    return int(resources.get("nproc_per_node") or 1)


ALL_QUEUES = [*worker_queues(MAX_PROCS), LIGHT_QUEUE]


class JobQueue(Protocol):
    def enqueue(self, job_id: str, kind: str, procs: int = 1) -> None:
        """Send the job's task to the queue fitting `procs` processes per machine; raises
        when the broker cannot take it."""

    def enqueue_join(self, job_id: str, attempt: int, procs: int) -> None:
        """Ask one more worker to join attempt `attempt` of a multi-machine job."""

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

    def enqueue(self, job_id: str, kind: str, procs: int = 1) -> None:
        name, queue = queue_for(kind, procs)
        self._send(name, [job_id], queue)

    def enqueue_join(self, job_id: str, attempt: int, procs: int) -> None:
        self._send(JOIN_TASK, [job_id, attempt], train_queue(procs))

    def _send(self, name: str, args: list, queue: str) -> None:
        self.app.send_task(
            name,
            args=args,
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
        pipe = self._redis().pipeline()
        for q in ALL_QUEUES:
            pipe.llen(q)
        lengths = dict(zip(ALL_QUEUES, pipe.execute(), strict=True))
        # The one-process queues always; a train-N queue once it holds something.
        return {q: int(n) for q, n in lengths.items() if n or q in (TRAIN_QUEUE, LIGHT_QUEUE)}

    def pending_job_ids(self) -> set[str] | None:
        # Celery's Redis transport keeps waiting messages in one list per queue and delivered,
        # unacknowledged ones in the `unacked` hash; both hold the task's args.
        try:
            client = self._redis()
            raw = [m for q in ALL_QUEUES for m in client.lrange(q, 0, -1)]
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
        self.routed: list[tuple[str, str]] = []  # (job id, queue) of each message
        self.joins: list[tuple[str, int]] = []
        self.reachable = reachable

    def enqueue(self, job_id: str, kind: str, procs: int = 1) -> None:
        if not self.reachable:
            raise ConnectionError("broker unreachable")
        self.sent.append((job_id, kind))
        self.routed.append((job_id, queue_for(kind, procs)[1]))

    def enqueue_join(self, job_id: str, attempt: int, procs: int) -> None:
        if not self.reachable:
            raise ConnectionError("broker unreachable")
        self.joins.append((job_id, attempt))
        self.routed.append((job_id, train_queue(procs)))

    def ping(self) -> bool:
        return self.reachable

    def depths(self) -> dict[str, int]:
        counts = {TRAIN_QUEUE: 0, LIGHT_QUEUE: 0}
        for _, q in self.routed:
            counts[q] = counts.get(q, 0) + 1
        return counts

    def pending_job_ids(self) -> set[str] | None:
        return {job for job, _ in self.sent}
