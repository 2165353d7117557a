"""API benchmark against a running server, on SQLite and on PostgreSQL.

    .venv/bin/python bench/api.py [--submits 500] [--points 100000]

For each database it starts the real stack pieces on 127.0.0.1 (Redis as the broker, uvicorn
serving server.main:app, PostgreSQL in a throwaway cluster) and measures:
  - job submit latency (POST /v1/jobs, validated, stored, enqueued to Redis), p50 and p99;
  - metric ingestion: points/s through the write path workers use (server.db.outputs, batches
    of 1000 upserts, one transaction each);
  - GET /v1/jobs/{id}/metrics?max_points=1000 over 100k points of one series, median of 20.
Targets (issue 5): submit p99 <= 25 ms, >= 20k points/s, query <= 100 ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import markdown_table  # noqa: E402
from server.db.outputs import write_metrics  # noqa: E402
from server.db.session import session_scope  # noqa: E402
from tests.processes import start_postgres  # noqa: E402
from tests.service import start_service  # noqa: E402

PAIRS = [{"prompt": f"q{i}", "chosen": "good", "rejected": "bad"} for i in range(64)]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def measure_submits(http: httpx.Client, dataset: str, n: int) -> list[float]:
    spec = {
        "model": "builtin:tiny-llama",
        "method": "dpo",
        "data": {"train": dataset},
        "train": {"steps": 10},
    }
    for _ in range(20):  # warm-up: imports, connection pools, the broker connection
        http.post("/v1/jobs", json=spec).raise_for_status()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        http.post("/v1/jobs", json=spec).raise_for_status()
        times.append(time.perf_counter() - start)
    return times


def measure_ingest(url: str, job_id: str, points: int, batch: int = 1000) -> float:
    """Points/s written as a worker writes them: one upsert batch per transaction."""
    names = ["loss/policy", "reward/mean", "kl/ref", "adv/std", "gro/weight/mean"]
    rows = [(step, name, step * 0.001) for step in range(points // len(names)) for name in names]
    start = time.perf_counter()
    for i in range(0, len(rows), batch):
        with session_scope(url) as session:
            write_metrics(session, job_id, rows[i : i + batch])
    return len(rows) / (time.perf_counter() - start)


def measure_query(http: httpx.Client, url: str, job_id: str, points: int) -> float:
    with session_scope(url) as session:
        write_metrics(session, job_id, [(s, "series/100k", float(s % 97)) for s in range(points)])
    path = f"/v1/jobs/{job_id}/metrics"
    params = {"names": "series/100k", "max_points": 1000}
    body = http.get(path, params=params).json()  # warm-up
    assert body["series"]["series/100k"]["total_points"] == points
    times = []
    for _ in range(20):
        start = time.perf_counter()
        http.get(path, params=params).raise_for_status()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_backend(name: str, url: str, root: Path, args: argparse.Namespace) -> list[str]:
    service = start_service(url, root / name)
    try:
        dataset = service.upload("".join(json.dumps(r) + "\n" for r in PAIRS).encode())
        submits = measure_submits(service.api, dataset, args.submits)
        job_id = service.api.get("/v1/jobs", params={"limit": 1}).json()["data"][0]["id"]
        ingest = measure_ingest(url, job_id, args.points)
        query = measure_query(service.api, url, job_id, args.points)
    finally:
        service.close()
    p50, p99 = percentile(submits, 50) * 1e3, percentile(submits, 99) * 1e3
    return [name, f"{p50:.1f}", f"{p99:.1f}", f"{ingest:,.0f}", f"{query * 1e3:.1f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--submits", type=int, default=500)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="gro-bench-api-"))
    rows = []
    for name in args.backends.split(","):
        if name == "sqlite":
            rows.append(run_backend(name, f"sqlite:///{root / 'gro.db'}", root, args))
            continue
        postgres = start_postgres()
        try:
            rows.append(run_backend(name, postgres.url(), root, args))
        finally:
            postgres.stop()
    print(
        markdown_table(
            [
                "database",
                "submit p50 ms",
                "submit p99 ms (<= 25)",
                "points/s (>= 20k)",
                f"metrics query ms, {args.points // 1000}k points (<= 100)",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
