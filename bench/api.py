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
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import markdown_table  # noqa: E402
from server.db.migrate import upgrade  # noqa: E402
from server.db.outputs import write_metrics  # noqa: E402
from server.db.owners import create_key  # noqa: E402
from server.db.session import dispose_engine, session_scope  # noqa: E402
from tests.processes import free_port, port_open, start_postgres, start_redis, stop, wait_until  # noqa: E402

PAIRS = [{"prompt": f"q{i}", "chosen": "good", "rejected": "bad"} for i in range(64)]


def start_api(url: str, broker: str, storage: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        "GRO_DATABASE_URL": url,
        "GRO_BROKER_URL": broker,
        "GRO_STORAGE_DIR": str(storage),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "server.main:app",
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=ROOT,
        env=env,
    )
    wait_until(lambda: port_open(port), 60, "the API")
    return process, f"http://127.0.0.1:{port}"


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


def run_backend(
    name: str, url: str, broker: str, root: Path, args: argparse.Namespace
) -> list[str]:
    upgrade(url)
    with session_scope(url) as session:
        key = create_key(session, "bench", admin=True)
    process, base = start_api(url, broker, root / f"storage-{name}")
    try:
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60
        ) as http:
            body = "".join(json.dumps(r) + "\n" for r in PAIRS).encode()
            dataset = http.post("/v1/datasets", files={"file": ("p.jsonl", body)}).json()["id"]
            submits = measure_submits(http, dataset, args.submits)
            job_id = http.get("/v1/jobs", params={"limit": 1}).json()["data"][0]["id"]
            ingest = measure_ingest(url, job_id, args.points)
            query = measure_query(http, url, job_id, args.points)
    finally:
        stop(process)
        dispose_engine(url)
    p50, p99 = percentile(submits, 50) * 1e3, percentile(submits, 99) * 1e3
    return [name, f"{p50:.1f}", f"{p99:.1f}", f"{ingest:,.0f}", f"{query * 1e3:.1f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--submits", type=int, default=500)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="gro-bench-api-"))
    redis = start_redis(root / "redis")
    rows = []
    try:
        for name in args.backends.split(","):
            if name == "sqlite":
                rows.append(
                    run_backend(name, f"sqlite:///{root / 'gro.db'}", redis.url, root, args)
                )
            else:
                postgres = start_postgres()
                try:
                    rows.append(run_backend(name, postgres.url(), redis.url, root, args))
                finally:
                    postgres.stop()
    finally:
        redis.stop()
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
