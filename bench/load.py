"""The API under load: real uvicorn, Redis, two workers training, N pollers and M event streams.

    .venv/bin/python bench/load.py [--db sqlite|postgresql|both] [--pollers 50] [--streams 50]
                                   [--seconds 30] [--etag] [--api-processes 1]
                                   [--without-training]

Phases, all in one run so that the ratios compare like with like:
  1. training alone: two tiny DPO jobs on two workers, their steps/s;
  2. under load: the same jobs go on while N pollers (metrics + job list, each poller its own
     client on its own timer every `--interval` s, out of phase; with --etag sending each
     ETag back as the dashboard's client does) and M SSE streams of the jobs' events run for
     --seconds. Before the clock starts, each poller makes its first round (its connection,
     and the API's first answer of each job, which fills the series cache from the database)
     and each stream is opened: the idle figures are of a warm API, so the timed ones are too;
     the first round is printed apart;
  3. idle: sequential GET /v1/jobs/{id}/metrics and GET /v1/jobs, the jobs cancelled.
With --without-training the jobs are cancelled before phase 2: the same clients against the API
alone, which tells the API's own tail from what training beside it costs.
It prints p50/p99 of each endpoint idle and loaded, the p99 ratio, errors, the training
slowdown (steps/s alone / steps/s under load), the CPU the API and the clients used under
load, and the loaded p50/p99 inside the API (its own latency histogram, to a bucket's bound;
with several API processes, of the one that answered the scrape): a request slow outside but
quick inside waited before the app saw it (accept queue, event loop, the client).
Target (issue 15): p99 <= 10x idle, 0 errors, at 50 pollers + 50 streams.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import markdown_table  # noqa: E402
from stack.up import sharing_the_machine  # noqa: E402
from tests.processes import start_postgres  # noqa: E402
from tests.service import Service, start_service  # noqa: E402

PAIRS = [{"prompt": f"q{i}", "chosen": "good", "rejected": "bad"} for i in range(64)]
Latencies = dict[str, list[float]]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] if ordered else 0.0


# What a poller asks for, as route templates: the names the API's latency histogram uses.
ROUTES = {"metrics": "/v1/jobs/{job_id}/metrics", "job list": "/v1/jobs"}


def endpoints(job: str) -> dict[str, str]:
    return {name: route.format(job_id=job) for name, route in ROUTES.items()}


Buckets = dict[str, list[tuple[float, float]]]


def server_buckets(http: httpx.Client) -> Buckets:
    """Per endpoint, the API's own cumulative latency histogram (bound, count) of its GETs,
    all statuses: the time from the app receiving a request to its last byte handed back."""
    found: dict[str, dict[float, float]] = {name: {} for name in ROUTES}
    by_route = {route: name for name, route in ROUTES.items()}
    text = http.get("/metrics").raise_for_status().text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            name = by_route.get(labels.get("route", ""))
            if sample.name.endswith("_bucket") and name and labels.get("method") == "GET":
                bound = float(labels["le"])
                found[name][bound] = found[name].get(bound, 0.0) + sample.value
    return {name: sorted(counts.items()) for name, counts in found.items()}


def server_quantile(
    before: list[tuple[float, float]], after: list[tuple[float, float]], q: float
) -> float:
    """The histogram bound under which `q` of the requests between the two reads ended."""
    was = dict(before)
    grown = [(bound, count - was.get(bound, 0.0)) for bound, count in after]
    total = grown[-1][1] if grown else 0.0
    return next((bound for bound, count in grown if count >= q * total), float("inf"))


def idle(http: httpx.Client, job: str, n: int = 500) -> Latencies:
    """`n` rounds one request at a time. Of 100, the p99 was the second slowest request: one
    hiccup of the machine moved the ratio's denominator 3x between runs (4 to 12 ms)."""
    times: Latencies = {name: [] for name in endpoints(job)}
    for _ in range(n):
        for name, path in endpoints(job).items():
            start = time.perf_counter()
            http.get(path).raise_for_status()
            times[name].append(time.perf_counter() - start)
    return times


def steps(http: httpx.Client, jobs: list[str]) -> int:
    return sum(http.get(f"/v1/jobs/{j}").json()["progress"]["step"] for j in jobs)


def steps_per_s(http: httpx.Client, jobs: list[str], seconds: float) -> float:
    first, start = steps(http, jobs), time.monotonic()
    time.sleep(seconds)
    return (steps(http, jobs) - first) / (time.monotonic() - start)


def _client(base: str, headers: dict) -> httpx.AsyncClient:
    """One party's own client, as 50 dashboards are 50 processes: one pool shared by all of
    them would measure httpcore's pool, whose every request scans all its connections."""
    # Idle connections expire before uvicorn's 5 s keep-alive does: reusing one the server is
    # closing would be a client-side ReadError, not the API's.
    limits = httpx.Limits(max_connections=2, keepalive_expiry=3.0)
    return httpx.AsyncClient(
        base_url=base, headers=headers, limits=limits, timeout=httpx.Timeout(60.0)
    )


def next_slot(slot: float, interval: float, now: float) -> float:
    """When a poller's next round starts: its timer's next tick after `slot`, skipping the
    ticks a slow round outlasted (at `now`), as a browser's interval timer does."""
    if interval <= 0:
        return now
    ticks = max(1, math.ceil((now - slot) / interval))
    return slot + ticks * interval


async def _poller(
    client: httpx.AsyncClient,
    job: str,
    until: float,
    times: Latencies,
    errors: list[str],
    args: argparse.Namespace,
) -> None:
    """Like a dashboard: both endpoints every `interval` s (0: back to back); with --etag it
    sends back each endpoint's last ETag, as the dashboard's client does."""
    tags: dict[str, str] = {}
    # Dashboards opened at different moments poll out of phase; 50 in lockstep would be a
    # burst of 100 requests each second, queueing each behind the other 99. And each keeps
    # its phase: a dashboard's refresh is a timer in the browser (Streamlit's run_every is a
    # setInterval), so round k starts at phase + k * interval however long the last took.
    # Resting `interval` after each round instead lines the pollers up after any slow
    # moment: all that waited on it finish together, and from then on fire together.
    slot = time.monotonic() + random.uniform(0, args.interval)
    while True:
        await asyncio.sleep(max(0.0, slot - time.monotonic()))
        if time.monotonic() >= until:
            return
        for name, path in endpoints(job).items():
            sent = {"If-None-Match": tags[name]} if name in tags else {}
            start = time.perf_counter()
            try:
                response = await client.get(path, headers=sent)
            except httpx.HTTPError as exc:
                errors.append(f"{name}: {type(exc).__name__}")
                continue
            times[name].append(time.perf_counter() - start)
            if response.status_code not in (200, 304):
                errors.append(f"{name}: {response.status_code}")
            elif args.etag and "ETag" in response.headers:
                tags[name] = response.headers["ETag"]
        slot = next_slot(slot, args.interval, time.monotonic())


async def _first_round(client: httpx.AsyncClient, job: str, errors: list[str]) -> list[float]:
    """A poller's first round, before the clock: its connection opened and the API's first
    answer of the job built (a cold series cache reads every series from the database)."""
    took = []
    for name, path in endpoints(job).items():
        start = time.perf_counter()
        try:
            (await client.get(path)).raise_for_status()
        except httpx.HTTPError as exc:
            errors.append(f"first {name}: {type(exc).__name__}")
        took.append(time.perf_counter() - start)
    return took


async def _open(
    opened: contextlib.AsyncExitStack, client: httpx.AsyncClient, job: str, errors: list[str]
) -> httpx.Response | None:
    """A stream of the job's events, its 200 received (before the clock)."""
    request = client.stream("GET", f"/v1/jobs/{job}/events/stream")
    try:
        response = await opened.enter_async_context(request)
    except httpx.HTTPError as exc:
        errors.append(f"stream: {type(exc).__name__}")
        return None
    if response.status_code != 200:
        errors.append(f"stream: {response.status_code}")
        return None
    return response


async def _follow(response: httpx.Response | None, until: float, errors: list[str]) -> int:
    """Reads an open stream until the load ends; the events it received."""
    received = 0
    if response is None:
        return 0
    try:
        async for line in response.aiter_lines():
            received += line.startswith("event: ")
            if time.monotonic() >= until:
                break
    except httpx.HTTPError as exc:
        errors.append(f"stream: {type(exc).__name__}")
    return received


async def load(
    base: str,
    headers: dict,
    jobs: list[str],
    args: argparse.Namespace,
    mark: Callable[[], None],
) -> tuple[Latencies, list[str], int, list[float]]:
    """The load phase: (latencies, errors, events received, the first rounds' latencies).
    Connections, each job's first answer and the streams' openings come before the clock,
    as the idle figures it is compared with are of a warm API; they are reported apart.
    `mark` is called when the clock starts."""
    times: Latencies = {name: [] for name in endpoints(jobs[0])}
    errors: list[str] = []
    # Made before the clock starts: each builds an SSL context (tens of ms of the bench's one
    # event loop), which had put a second on every poller's first request.
    clients = [_client(base, headers) for _ in range(args.pollers + args.streams)]
    pollers, streams = clients[: args.pollers], clients[args.pollers :]
    async with contextlib.AsyncExitStack() as opened:
        try:
            first = await asyncio.gather(
                *(_first_round(c, jobs[i % 2], errors) for i, c in enumerate(pollers))
            )
            responses = await asyncio.gather(
                *(_open(opened, c, jobs[i % 2], errors) for i, c in enumerate(streams))
            )
            mark()
            until = time.monotonic() + args.seconds
            results = await asyncio.gather(
                *(
                    _poller(c, jobs[i % 2], until, times, errors, args)
                    for i, c in enumerate(pollers)
                ),
                *(_follow(r, until, errors) for r in responses),
            )
        finally:
            await opened.aclose()
            await asyncio.gather(*(c.aclose() for c in clients))
    events = sum(r for r in results if isinstance(r, int))
    return times, errors, events, [t for round_ in first for t in round_]


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and everything it started (uvicorn's workers)."""
    process = psutil.Process(pid)
    return sum(sum(p.cpu_times()[:2]) for p in [process, *process.children(recursive=True)])


def train(service: Service, dataset: str) -> list[str]:
    spec = {
        "model": "builtin:tiny-llama",
        "method": "dpo",
        "data": {"train": dataset},
        "train": {"steps": 100_000, "batch_size": 8},
        "eval": {"every": 0},
        "checkpoint": {"every": 0},
    }
    jobs = [service.submit(spec) for _ in range(2)]
    service.wait(lambda: steps(service.api, jobs) >= 20, 300, "both jobs training")
    return jobs


def _cancel(service: Service, jobs: list[str]) -> None:
    for job in jobs:
        service.api.post(f"/v1/jobs/{job}/cancel")
    done = ("cancelled", "failed", "succeeded")
    service.wait(lambda: all(service.job(j)["status"] in done for j in jobs), 120, "cancel")


def run(db: str, url: str, args: argparse.Namespace) -> list[list[str]]:
    """Training alone, then under load, then idle (jobs cancelled: the same rows, nothing
    running); the table's rows for this database."""
    root = Path(tempfile.mkdtemp(prefix=f"gro-load-{db}-"))
    # The workers as `gro up` runs them on one machine with the API (stack.up).
    env = {"GRO_TORCH_THREADS": "1", **sharing_the_machine(os.environ)}
    service = start_service(url, root, env, args.api_processes)
    try:
        dataset = service.upload("".join(json.dumps(r) + "\n" for r in PAIRS).encode())
        service.start_worker()
        service.start_worker()
        jobs = train(service, dataset)
        alone = steps_per_s(service.api, jobs, args.train_seconds)
        base, headers = str(service.api.base_url), dict(service.api.headers)
        if args.without_training:  # the API alone under the same clients
            _cancel(service, jobs)
        marks: dict = {}

        def mark() -> None:  # after the warm-up: what the timed phase is measured from
            marks.update(steps=steps(service.api, jobs), start=time.monotonic())
            marks.update(api=cpu_seconds(service.api_process.pid), own=time.process_time())
            marks["histogram"] = server_buckets(service.api)

        times, errors, events, first = asyncio.run(load(base, headers, jobs, args, mark))
        before, start, histogram = marks["steps"], marks["start"], marks["histogram"]
        api_cpu, own_cpu = marks["api"], marks["own"]
        elapsed = time.monotonic() - start
        inside = {
            name: [server_quantile(histogram[name], grown, q) for q in (0.5, 0.99)]
            for name, grown in server_buckets(service.api).items()
        }
        loaded = (steps(service.api, jobs) - before) / elapsed
        # Where the CPU went: a busy API is too slow; an idle one behind slow answers waits.
        api_cores = (cpu_seconds(service.api_process.pid) - api_cpu) / elapsed
        client_cores = (time.process_time() - own_cpu) / elapsed
        _cancel(service, jobs)
        quiet = idle(service.api, jobs[0])
    finally:
        service.close()
    rows = []
    for name in times:
        idle_p99, p99 = percentile(quiet[name], 99), percentile(times[name], 99)
        rows.append(
            [
                db,
                name,
                f"{percentile(quiet[name], 50) * 1000:.1f} / {idle_p99 * 1000:.1f}",
                f"{percentile(times[name], 50) * 1000:.1f} / {p99 * 1000:.1f}",
                f"{p99 / idle_p99:.1f}x",
                " / ".join(f"<= {bound * 1000:g}" for bound in inside[name]),
                str(len(times[name])),
            ]
        )
    summary = f"{alone:.1f} -> {loaded:.1f} ({alone / max(loaded, 1e-9):.2f}x slower)"
    rows.append([db, f"{args.streams} streams", "", f"{events} events", "", "", ""])
    cold = f"{percentile(first, 50) * 1000:.1f} / {max(first, default=0) * 1000:.1f} (max)"
    rows.append([db, "first round (cold, not timed)", "", cold, "", "", str(len(first))])
    rows.append([db, "training steps/s", "", summary, "", "", f"errors: {len(errors)}"])
    cores = f"API {api_cores:.2f}, clients {client_cores:.2f}"
    rows.append([db, "cores used under load", "", cores, "", "", ""])
    if errors:
        print(f"{db}: first errors: {errors[:5]}", file=sys.stderr)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--pollers", type=int, default=50)
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--train-seconds", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=1.0, help="s between a poller's rounds")
    parser.add_argument("--etag", action="store_true", help="pollers send If-None-Match back")
    parser.add_argument("--api-processes", type=int, default=1, help="uvicorn --workers")
    parser.add_argument(
        "--without-training",
        action="store_true",
        help="cancel the jobs before the load: the API alone under the same clients",
    )
    args = parser.parse_args()
    rows: list[list[str]] = []
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            rows += run("sqlite", f"sqlite:///{tmp}/gro.db", args)
    if args.db in ("postgresql", "both"):
        postgres = start_postgres()
        try:
            rows += run("postgresql", postgres.url(), args)
        finally:
            postgres.stop()
    header = ["database", "endpoint", "idle p50 / p99 ms", "loaded p50 / p99 ms", "p99 ratio"]
    header += ["inside the API p50 / p99 ms", "n"]
    print(
        f"{args.pollers} pollers (every {args.interval:g} s), {args.streams} streams, "
        f"{args.seconds:.0f} s of load, ETags {'sent back' if args.etag else 'not sent'}, "
        f"{args.api_processes} API process(es)"
        + (", jobs cancelled before the load" if args.without_training else "")
    )
    print(markdown_table(header, rows))


if __name__ == "__main__":
    main()
