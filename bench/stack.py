"""Stack benchmark: queue overhead and throughput of tiny jobs through the real service.

    .venv/bin/python bench/stack.py [--jobs 20] [--database sqlite|postgresql]

Processes as in production, on 127.0.0.1: uvicorn serving the API, Redis, Celery workers
(`python -m worker`), and SQLite (gro up's default) or PostgreSQL. Measures
  - queue overhead of one job on an idle worker: POST /v1/jobs -> the worker claims it, and
    -> its first metric point is in the database (claim + model load + first step);
  - throughput: N tiny jobs submitted at once, on 1 worker and on 2 workers, wall time until
    all succeeded (the ratio is what a second worker buys on this 2-core machine).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import markdown_table  # noqa: E402
from server.db.models import JobEvent, Metric  # noqa: E402
from stack.up import worker_threads  # noqa: E402
from tests.processes import start_postgres  # noqa: E402
from tests.server.conftest import PAIRS, jsonl  # noqa: E402
from tests.service import Service, start_service  # noqa: E402


def tiny(dataset: str) -> dict:
    return {
        "model": "builtin:tiny-llama",
        "method": "dpo",
        "data": {"train": dataset},
        "train": {"steps": 5, "batch_size": 4, "warmup_steps": 0},
        "eval": {"every": 0},
        "checkpoint": {"every": 0, "keep": 1},
    }


def overhead(service: Service, dataset: str, repeats: int) -> tuple[float, float]:
    """Median seconds from submit to claim, and from submit to the first metric point."""
    claims, firsts = [], []
    for _ in range(repeats):
        submitted = time.time()
        job_id = service.submit(tiny(dataset))
        service.wait(lambda j=job_id: service.job(j)["status"] == "succeeded", 300, "a job")
        claimed = next(e for e in service.rows(JobEvent, job_id) if e.kind == "claimed")
        claims.append(claimed.created_at.timestamp() - submitted)
        first = _first_metric_time(service, job_id)
        firsts.append(first - submitted)
    return statistics.median(claims), statistics.median(firsts)


def _first_metric_time(service: Service, job_id: str) -> float:
    # The worker records each step's training time since the job started; the job's start is
    # its `claimed` event. The first point lands at claim + elapsed of step 1.
    rows = [m for m in service.rows(Metric, job_id) if m.name == "time/elapsed_s"]
    step_one = min(rows, key=lambda m: m.step)
    started = next(e for e in service.rows(JobEvent, job_id) if e.kind == "started")
    return started.created_at.timestamp() + step_one.value


def wait_ready(service: Service, workers: int, timeout: float = 300) -> None:
    """Until `workers` Celery workers answer a ping: a worker still importing torch would
    otherwise count its start-up against the throughput it is measured for."""
    from celery import Celery

    app = Celery(broker=service.env["GRO_BROKER_URL"])
    deadline = time.monotonic() + timeout
    while len(app.control.ping(timeout=1.0)) < workers:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{workers} workers not ready after {timeout:.0f} s")


def throughput(service: Service, dataset: str, jobs: int) -> float:
    started = time.monotonic()
    ids = [service.submit(tiny(dataset)) for _ in range(jobs)]
    service.wait(lambda: all(service.job(j)["status"] == "succeeded" for j in ids), 3600, "jobs")
    return time.monotonic() - started


def run(url_for: callable, jobs: int, root: Path) -> list[list[str]]:
    rows = []
    for workers in (1, 2):
        # The threads `gro up --workers N` gives each worker.
        threads = worker_threads(workers, dict(os.environ))
        service = start_service(url_for(f"w{workers}"), root / f"w{workers}", threads)
        try:
            dataset = service.upload(jsonl(PAIRS))
            for _ in range(workers):
                service.start_worker()
            wait_ready(service, workers)
            claim, first = overhead(service, dataset, 3) if workers == 1 else (None, None)
            wall = throughput(service, dataset, jobs)
        finally:
            service.close()
        rows.append(
            [
                str(workers),
                f"{claim:.2f}" if claim else "",
                f"{first:.2f}" if first else "",
                f"{wall:.1f}",
                f"{jobs / wall * 60:.1f}",
            ]
        )
    rows[1].append(f"{float(rows[0][3]) / float(rows[1][3]):.2f}x")
    rows[0].append("1.00x")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="gro-bench-stack-"))
    postgres = start_postgres() if args.database == "postgresql" else None
    if postgres is not None:
        from tests.server.conftest import admin_sql

        def url_for(name: str) -> str:
            admin_sql(postgres, f"CREATE DATABASE {name}")
            return postgres.url(name)
    else:

        def url_for(name: str) -> str:
            return f"sqlite:///{root / name}.db"

    try:
        rows = run(url_for, args.jobs, root)
    finally:
        if postgres is not None:
            postgres.stop()
    print(
        markdown_table(
            [
                "workers",
                "submit -> claimed s",
                "submit -> first metric s",
                f"{args.jobs} jobs wall s",
                "jobs/min",
                "speedup",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
