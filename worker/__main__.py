"""`python -m worker` / `gro worker`: one Celery worker, one job at a time (one per GPU)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from server.queue import LIGHT_QUEUE, TRAIN_QUEUE


def worker_argv(queues: str, name: str, loglevel: str) -> list[str]:
    # solo pool: the job runs in the worker process itself (one GPU, one job), so a kill of
    # the worker stops the job too, and the heartbeat thread lives beside it.
    return [
        "worker",
        "--pool",
        "solo",
        "--concurrency",
        "1",
        "-Q",
        queues,
        "-n",
        f"{name}@%h",
        "--loglevel",
        loglevel,
        "--without-gossip",
        "--without-mingle",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gro worker", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run(args)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--queues",
        default=f"{TRAIN_QUEUE},{LIGHT_QUEUE}",
        help="queues to take jobs from (GPU machines: train; CPU ones: light)",
    )
    parser.add_argument("--name", default="gro", help="worker name (the host is appended)")
    parser.add_argument("--loglevel", default="INFO")


def run(args: argparse.Namespace) -> int:
    # Imported when a worker starts, not when `gro` loads this module to register its verb:
    # building the Celery app reads the settings, which refuse a production environment
    # without a secret, and every other `gro` command would fail on a machine set up so.
    from worker.celery_app import app

    app.worker_main(worker_argv(args.queues, args.name, args.loglevel))
    return 0


if __name__ == "__main__":
    sys.exit(main())
