"""`python -m worker` / `gro worker`: one Celery worker, one job at a time (one per machine, or
per GPU). With `--procs N` (GRO_WORKER_PROCS) it offers a job N training processes (its GPUs,
or gloo processes on a CPU machine) and takes jobs of up to N processes per machine."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from server.queue import LIGHT_QUEUE, worker_queues


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
        "--procs",
        type=int,
        default=None,
        help="training processes this worker offers a job (default: GRO_WORKER_PROCS, else "
        "the machine's GPU count, else 1)",
    )
    parser.add_argument(
        "--queues",
        default=None,
        help="queues to take jobs from (default: every training queue --procs fits, and light)",
    )
    parser.add_argument("--name", default="gro", help="worker name (the host is appended)")
    parser.add_argument("--loglevel", default="INFO")


def offered_procs(asked: int | None, setting: int | None) -> int:
    """Processes a worker offers: asked for, else the setting, else one per GPU (at least 1)."""
    if asked is not None:
        if asked < 1:
            raise SystemExit(f"gro worker: --procs must be at least 1, not {asked}")
        return asked
    if setting is not None:
        return setting
    import torch

    return max(1, torch.cuda.device_count())


def default_queues(procs: int) -> str:
    return ",".join([*worker_queues(procs), LIGHT_QUEUE])


def run(args: argparse.Namespace) -> int:
    # Imported when a worker starts, not when `gro` loads this module to register its verb:
    # building the Celery app reads the settings, which refuse a production environment
    # without a secret, and every other `gro` command would fail on a machine set up so.
    from server.config import get_settings
    from worker.celery_app import app

    procs = offered_procs(args.procs, get_settings().worker_procs)
    queues = args.queues or default_queues(procs)
    app.worker_main(worker_argv(queues, args.name, args.loglevel))
    return 0


if __name__ == "__main__":
    sys.exit(main())
