"""A fleet by simulation: N workers against one API, one PostgreSQL and one Redis.

    .venv/bin/python bench/fleet.py [--sizes 10,50,200] [--seconds 40] [--json OUT]

Real processes on 127.0.0.1 (uvicorn, PostgreSQL, Redis, stopped by PID); the workers are
simulated by bench/fleet_worker.py, up to --per-process of them as threads of one process, each
running the worker's own claim / DbWriter / finish / reconciler code with a work function that
writes a job's outputs at a fixed rate instead of training. For each N, in turn on the same
database (which keeps growing, as a real one does):
  1. the queue is topped up through the API with enough jobs for the phase;
  2. all N workers start together (a claim burst: how long until N jobs run);
  3. for --seconds, they run jobs of --job-steps steps while --pollers dashboards poll a running
     job's metrics and the running-jobs list;
  4. they stop (their jobs end cancelled) and the next N begins.
It prints one row per N: jobs claimed/s, metric points ingested/s against those offered, API
p99, PostgreSQL's transactions, tuples, connections and CPU, Redis' commands, the simulator's
and other processes' CPU; then names the first bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import RESULT_PREFIX, markdown_table  # noqa: E402
from bench.fleet_probe import COUNTERS, CPU_COLUMNS, MONITOR, Probe, Sampler, Snapshot  # noqa: E402
from bench.load import percentile  # noqa: E402
from tests.processes import start_postgres  # noqa: E402
from tests.service import Service, start_service  # noqa: E402

PAIRS = [{"prompt": f"q{i}", "chosen": "good", "rejected": "bad"} for i in range(16)]
DEFAULT_MAX_CONNECTIONS = 100  # PostgreSQL's own default, which a fleet meets first

# --- the API's readers ---------------------------------------------------------------------


async def _poller(
    client: httpx.AsyncClient, until: float, times: dict[str, list[float]], errors: list[str]
) -> None:
    """A dashboard: the running jobs, then one of their metrics, twice a second."""
    turn = 0
    while time.monotonic() < until:
        await asyncio.sleep(0.5)
        start = time.perf_counter()
        response = await client.get("/v1/jobs", params={"status": "running"})
        times["job list"].append(time.perf_counter() - start)
        if response.status_code != 200:
            errors.append(f"job list: {response.status_code}")
            continue
        running = response.json()["data"]
        if not running:
            continue
        turn += 1
        start = time.perf_counter()
        response = await client.get(f"/v1/jobs/{running[turn % len(running)]['id']}/metrics")
        times["metrics"].append(time.perf_counter() - start)
        if response.status_code != 200:
            errors.append(f"metrics: {response.status_code}")


async def poll(service: Service, pollers: int, seconds: float) -> tuple[dict, list[str]]:
    times: dict[str, list[float]] = {"job list": [], "metrics": []}
    errors: list[str] = []
    async with httpx.AsyncClient(
        base_url=str(service.api.base_url), headers=dict(service.api.headers), timeout=60.0
    ) as client:
        until = time.monotonic() + seconds
        await asyncio.gather(*(_poller(client, until, times, errors) for _ in range(pollers)))
    return times, errors


async def submit(service: Service, dataset: str, count: int, job_steps: int) -> float:
    """Queue `count` jobs through the API (8 at a time); the submissions per second."""
    spec = {
        "model": "builtin:tiny-llama",
        "method": "dpo",
        "data": {"train": dataset},
        "train": {"steps": job_steps, "batch_size": 4},
        "eval": {"every": 0},
        "checkpoint": {"every": 0},
    }
    gate = asyncio.Semaphore(8)

    async def one(client: httpx.AsyncClient) -> None:
        async with gate:
            response = await client.post("/v1/jobs", json=spec)
            response.raise_for_status()

    start = time.perf_counter()
    async with httpx.AsyncClient(
        base_url=str(service.api.base_url), headers=dict(service.api.headers), timeout=60.0
    ) as client:
        await asyncio.gather(*(one(client) for _ in range(count)))
    return count / max(time.perf_counter() - start, 1e-9)


# --- one fleet size ------------------------------------------------------------------------


def start_hosts(service: Service, args: argparse.Namespace, n: int) -> list[subprocess.Popen]:
    """ceil(n / per_process) processes of simulated workers, each once it printed READY."""
    hosts = []
    for first in range(0, n, args.per_process):
        argv = [
            sys.executable,
            str(ROOT / "bench" / "fleet_worker.py"),
            *("--first", str(first), "--count", str(min(args.per_process, n - first))),
            *("--database-url", service.url, "--broker-url", service.redis.url),
            *("--storage", service.env["GRO_STORAGE_DIR"]),
            *("--steps-per-s", str(args.steps_per_s)),
            *("--metrics-per-step", str(args.metrics_per_step)),
            *("--samples-per-step", str(args.samples_per_step)),
        ]
        log = (service.logs / f"fleet-{n}-{first}.log").open("ab")
        hosts.append(
            subprocess.Popen(
                argv, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True
            )
        )
    for host in hosts:
        line = host.stdout.readline() if host.stdout else ""
        if line.strip() != "READY":
            raise RuntimeError(f"a fleet process did not start: see {service.logs}")
    return hosts


def tell(hosts: list[subprocess.Popen], word: str) -> None:
    for host in hosts:
        assert host.stdin is not None
        host.stdin.write(word + "\n")
        host.stdin.flush()


def collect(hosts: list[subprocess.Popen]) -> dict[str, int]:
    """Stop the hosts and add up their counts."""
    tell(hosts, "stop")
    totals: dict[str, int] = {}
    for host in hosts:
        out, _ = host.communicate(timeout=90)
        lines = [x for x in out.splitlines() if x.startswith(RESULT_PREFIX)]
        if host.returncode != 0 or not lines:
            raise RuntimeError(f"a fleet process failed (exit {host.returncode})")
        for key, value in json.loads(lines[-1].removeprefix(RESULT_PREFIX)).items():
            totals[key] = totals.get(key, 0) + value
    return totals


def run_size(
    service: Service, probe: Probe, dataset: str, args: argparse.Namespace, n: int
) -> dict[str, Any]:
    job_s = args.job_steps / args.steps_per_s
    with probe.engine.connect() as connection:
        queued = connection.execute(text("SELECT count(*) FROM jobs WHERE status = 'queued'"))
        queued = queued.scalar_one()
    wanted = n * (1 + math.ceil(args.seconds / job_s))
    submits = asyncio.run(submit(service, dataset, max(0, wanted - queued), args.job_steps))
    hosts = start_hosts(service, args, n)
    probe.hosts = [psutil.Process(h.pid) for h in hosts]
    before = probe.snapshot()
    sampler = Sampler(probe, n)
    tell(hosts, "go")
    sampler.start()
    times, errors = asyncio.run(poll(service, args.pollers, args.seconds))
    after = probe.snapshot()
    sampler.done.set()
    sampler.join()
    counts = collect(hosts)
    return figures(n, before, after, sampler, times, errors, counts, submits, args)


def figures(
    n: int,
    before: Snapshot,
    after: Snapshot,
    sampler: Sampler,
    times: dict[str, list[float]],
    errors: list[str],
    counts: dict[str, int],
    submits: float,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """The size's numbers, rates per second of the measured window."""
    wall = after.at - before.at
    db = {k: (after.db[k] - before.db[k]) / wall for k in COUNTERS}
    cpu = {k: (after.cpu[k] - before.cpu[k]) / wall for k in after.cpu}
    ours = cpu["postgres"] + cpu["redis"] + cpu["api"] + cpu["bench"]
    samples = sampler.samples or [(0, 0, 0, 0)]
    return {
        "workers": n,
        "seconds": wall,
        "claimed_per_s": db["taken"],
        "burst_s": sampler.burst_s,
        "points_per_s": db["metric_ins"],
        "points_offered_per_s": counts.get("points", 0) / wall,
        "samples_per_s": db["sample_ins"],
        "steps_per_s": counts.get("steps", 0) / wall,
        "steps_nominal_per_s": n * args.steps_per_s,
        "api_p50_ms": {k: percentile(v, 50) * 1000 for k, v in times.items()},
        "api_p99_ms": {k: percentile(v, 99) * 1000 for k, v in times.items()},
        "api_requests": sum(len(v) for v in times.values()),
        "api_errors": len(errors),
        "xact_per_s": db["xact"],
        "tup_ins_per_s": db["tup_ins"],
        "tup_upd_per_s": db["tup_upd"],
        "tup_fetch_per_s": db["tup_fetch"],
        "connections_peak": max(s[0] for s in samples),
        "connections_active_mean": sum(s[1] for s in samples) / len(samples),
        "lock_waits_peak": max(s[2] for s in samples),
        "redis_commands_per_s": (after.redis_commands - before.redis_commands) / wall,
        "cpu_cores": cpu | {"others": max(0.0, cpu["machine"] - ours)},
        "submits_per_s": submits,
        "jobs_ended": {k.removeprefix("ended_"): v for k, v in counts.items() if "ended_" in k},
    }


# --- the report ----------------------------------------------------------------------------


def bottleneck(rows: list[dict[str, Any]], cores: int) -> str:
    """The first limit the fleet meets as N grows, from the rules below, in order per N."""
    base_p99 = max(rows[0]["api_p99_ms"].values()) if rows else 0.0
    for row in rows:
        n, cpu = row["workers"], row["cpu_cores"]
        if row["connections_peak"] > DEFAULT_MAX_CONNECTIONS:
            return (
                f"connections at N={n}: the fleet held {row['connections_peak']} PostgreSQL "
                f"connections ({row['connections_peak'] / n:.1f} a worker), over PostgreSQL's "
                f"default max_connections={DEFAULT_MAX_CONNECTIONS}"
            )
        behind = row["points_per_s"] < 0.9 * row["points_offered_per_s"]
        slowed = row["steps_per_s"] < 0.9 * row["steps_nominal_per_s"]
        if behind or slowed:
            busiest = max(("postgres", "api", "bench", "others"), key=lambda k: cpu[k])
            return (
                f"writes at N={n}: {row['points_per_s']:.0f} of "
                f"{row['points_offered_per_s']:.0f} points/s ingested, jobs at "
                f"{row['steps_per_s'] / row['steps_nominal_per_s']:.0%} of their pace; "
                f"machine CPU {cpu['machine']:.2f}/{cores} cores, the most by {busiest} "
                f"({cpu[busiest]:.2f})"
            )
        if base_p99 and max(row["api_p99_ms"].values()) > 10 * base_p99:
            return f"API reads at N={n}: p99 over 10x that at N={rows[0]['workers']}"
    return f"none up to N={rows[-1]['workers']}" if rows else "no rows"


def table(rows: list[dict[str, Any]]) -> str:
    header = [
        "N",
        "claimed/s (burst s)",
        "points/s in / offered",
        "samples/s",
        "steps/s / nominal",
        "API p99 ms list / metrics",
        "xact/s",
        "tuples ins / upd / fetched per s",
        "conns peak (active)",
        "CPU cores pg / api / redis / bench / others",
        "redis cmd/s",
    ]
    body = []
    for r in rows:
        cpu, p99 = r["cpu_cores"], r["api_p99_ms"]
        burst = f"{r['burst_s']:.1f}" if r["burst_s"] is not None else "never"
        body.append(
            [
                str(r["workers"]),
                f"{r['claimed_per_s']:.2f} ({burst})",
                f"{r['points_per_s']:.0f} / {r['points_offered_per_s']:.0f}",
                f"{r['samples_per_s']:.0f}",
                f"{r['steps_per_s']:.1f} / {r['steps_nominal_per_s']:.0f}",
                f"{p99['job list']:.0f} / {p99['metrics']:.0f}",
                f"{r['xact_per_s']:.0f}",
                f"{r['tup_ins_per_s']:.0f} / {r['tup_upd_per_s']:.0f} / {r['tup_fetch_per_s']:.0f}",
                f"{r['connections_peak']} ({r['connections_active_mean']:.1f})",
                " / ".join(f"{cpu[k]:.2f}" for k in CPU_COLUMNS),
                f"{r['redis_commands_per_s']:.0f}",
            ]
        )
    return markdown_table(header, body)


def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every size in `args.sizes` on one PostgreSQL, Redis and API; a row per size."""
    postgres = start_postgres(max_connections=args.max_connections)
    root = Path(tempfile.mkdtemp(prefix="gro-fleet-"))
    rows = []
    try:
        # One owner submits the whole fleet's jobs: its cap on active jobs is lifted.
        service = start_service(postgres.url(), root, {"GRO_LIMIT_ACTIVE_JOBS": "1000000"})
        engine = create_engine(
            f"{postgres.url()}?application_name={MONITOR}", isolation_level="AUTOCOMMIT"
        )
        probe = Probe(service, psutil.Process(postgres.process.pid), engine)
        try:
            dataset = service.upload("".join(json.dumps(r) + "\n" for r in PAIRS).encode())
            for n in args.sizes:
                rows.append(run_size(service, probe, dataset, args, n))
                print(table(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
        finally:
            engine.dispose()
            service.close()
    finally:
        postgres.stop()
    return rows


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[10, 50, 200])
    p.add_argument("--seconds", type=float, default=40.0, help="measured seconds per size")
    p.add_argument("--per-process", type=int, default=50, help="simulated workers per process")
    p.add_argument("--pollers", type=int, default=4, help="dashboards polling the API")
    p.add_argument("--steps-per-s", type=float, default=1.0, help="each job's training pace")
    p.add_argument("--metrics-per-step", type=int, default=20)
    p.add_argument("--samples-per-step", type=int, default=8)
    p.add_argument("--job-steps", type=int, default=30, help="steps of each queued job")
    p.add_argument("--max-connections", type=int, default=1000, help="PostgreSQL's limit here")
    p.add_argument("--json", type=Path, help="also write the rows here")
    return p


def main() -> None:
    args = parser().parse_args()
    started = time.monotonic()
    rows = measure(args)
    cores = psutil.cpu_count() or 1
    print(
        f"{cores} cores; each job {args.steps_per_s:g} steps/s x {args.metrics_per_step} "
        f"metrics + {args.samples_per_step} samples a step, {args.job_steps} steps; "
        f"{args.pollers} pollers; {args.seconds:.0f} s per size; "
        f"{time.monotonic() - started:.0f} s in all"
    )
    print(table(rows))
    print(f"first bottleneck: {bottleneck(rows, cores)}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
