"""Simulated workers for bench/fleet.py: one process hosting `--count` of them as threads.

Each simulated worker is what `python -m worker` is, less Celery's process and the training:
it takes one message at a time from the broker's `train` queue (prefetch 1, acknowledged after
the job, as Celery does), runs it with the worker's own `worker.runner.run_train_job` (the
claim, the DbWriter with its heartbeat thread and one-second flushes, the cancel check each
step, the finish), and runs its own reconciler thread. Only the work function is replaced
(`worker.execute.WORK["train"]`, the hook the worker's tests use): instead of gro_core it emits
a job's outputs at a fixed rate. Every simulated worker gets its own database URL (a distinct
`application_name`), hence its own engine and pool, like a worker process has.

    python bench/fleet_worker.py --first 0 --count 50 --database-url ... --broker-url ...
        --storage DIR [--steps-per-s 1 --metrics-per-step 20 --samples-per-step 8]

It prints READY once its workers are built, starts them on a line `go` on stdin, stops them on
`stop` (their jobs end `cancelled` at the next step), and prints its counts as a BENCH_RESULT.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kombu import Connection

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import emit_result  # noqa: E402
from server.config import Settings  # noqa: E402
from server.db.models import CANCELLED, SUCCEEDED  # noqa: E402
from server.queue import TRAIN_QUEUE, CeleryQueue  # noqa: E402
from worker import execute  # noqa: E402
from worker.callback import DbWriter  # noqa: E402
from worker.reconcile import Reconciler  # noqa: E402
from worker.runner import SKIPPED, run_train_job  # noqa: E402


@dataclass(frozen=True)
class Load:
    """What one running job produces."""

    steps_per_s: float
    """Training steps a second (a small model on one GPU: about 1)."""
    metrics_per_step: int
    """Metric points each step logs (an online method logs ~20: loss, reward, kl, lengths...)."""
    samples_per_step: int
    """Scored completions each step keeps (online methods keep the step's rollouts)."""


class Tally:
    """Counts shared by the threads of this process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def add(self, **counts: int) -> None:
        with self.lock:
            self.counts.update(counts)


def _metrics(load: Load) -> dict[str, float]:
    return {f"sim/metric_{i:02d}": random.random() for i in range(load.metrics_per_step)}


def _samples(load: Load, step: int) -> list[dict[str, Any]]:
    return [
        {
            "prompt": f"prompt {step}-{i}: what is {i} + {step}?",
            "completion": f"The answer is {i + step}. " * 8,
            "reward": random.random(),
            "advantage": random.random() - 0.5,
            "group": i // 4,
        }
        for i in range(load.samples_per_step)
    ]


def simulated_train(load: Load, stop: threading.Event, tally: Tally) -> Any:
    """A work function (worker.execute.WORK's signature) that writes what a training run of the
    spec's `train.steps` would, at `load`'s rate, through the worker's DbWriter; like the real
    loop it checks for a cancel before each step, and ends cancelled when the bench stops."""

    def train(
        settings: Settings, job_id: str, document: dict, checkpoint: Any, writer: DbWriter
    ) -> dict[str, Any]:
        total = int(document["train"]["steps"])
        writer.on_event(0, "started", f"simulated run, {total} steps")
        start, metrics = time.monotonic(), {}
        for step in range(1, total + 1):
            if stop.is_set() or writer.should_stop():
                writer.on_event(step - 1, "stopped", "cancelled between steps")
                return {"status": CANCELLED, "step": step - 1}
            # A fixed schedule: a step delayed by the database is not made up by the next one.
            stop.wait(max(0.0, start + step / load.steps_per_s - time.monotonic()))
            metrics = _metrics(load)
            writer.on_metrics(step, metrics)
            if load.samples_per_step:
                writer.on_samples(step, _samples(load, step))
            writer.on_step_end(step, total, metrics)
            tally.add(steps=1, points=len(metrics), samples=load.samples_per_step)
        return {"status": SUCCEEDED, "step": total, "final_metrics": metrics}

    return train


def work(settings: Settings, name: str, stop: threading.Event, tally: Tally) -> None:
    """One simulated worker: take a message, run its job, acknowledge it; until `stop`."""
    with Connection(settings.broker_url) as connection:
        queue = connection.SimpleQueue(TRAIN_QUEUE)
        queue.consumer.qos(prefetch_count=1)  # Celery's worker_prefetch_multiplier=1
        while not stop.is_set():
            try:
                message = queue.get(block=True, timeout=1.0)
            except queue.Empty:
                continue
            job_id = message.payload[0][0]  # Celery's message body: [args, kwargs, embed]
            outcome = run_train_job(settings, job_id, name)
            message.ack()
            tally.add(claimed=int(outcome != SKIPPED), **{f"ended_{outcome}": 1})


def worker_settings(args: argparse.Namespace, index: int) -> Settings:
    separator = "&" if "?" in args.database_url else "?"
    return Settings(
        database_url=f"{args.database_url}{separator}application_name=gro-fleet-{index}",
        broker_url=args.broker_url,
        storage_dir=args.storage,
        job_isolation="inline",  # the job is this thread: no child process to fork
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--first", type=int, required=True, help="index of the first worker")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--broker-url", required=True)
    parser.add_argument("--storage", required=True)
    parser.add_argument("--steps-per-s", type=float, default=1.0)
    parser.add_argument("--metrics-per-step", type=int, default=20)
    parser.add_argument("--samples-per-step", type=int, default=8)
    args = parser.parse_args()
    load = Load(args.steps_per_s, args.metrics_per_step, args.samples_per_step)
    stop, tally = threading.Event(), Tally()
    execute.WORK["train"] = simulated_train(load, stop, tally)
    workers = [worker_settings(args, i) for i in range(args.first, args.first + args.count)]
    reconcilers = [Reconciler(s, CeleryQueue(s.broker_url)) for s in workers]
    threads = [
        threading.Thread(target=work, args=(s, f"fleet-{i}", stop, tally), daemon=True)
        for i, s in zip(range(args.first, args.first + args.count), workers, strict=True)
    ]
    print("READY", flush=True)
    if sys.stdin.readline().strip() != "go":
        return
    for thread, reconciler in zip(threads, reconcilers, strict=True):
        thread.start()
        reconciler.thread.start()
    sys.stdin.readline()  # "stop", or the parent closing the pipe
    stop.set()
    for reconciler in reconcilers:
        reconciler.stopped.set()
    deadline = time.monotonic() + 30
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    emit_result(dict(tally.counts) | {"alive": sum(t.is_alive() for t in threads)})


if __name__ == "__main__":
    main()
