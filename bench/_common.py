"""Helpers the benchmarks share: peak memory, the machine's matmul rate, worker processes.

Benchmarks run each measured job in a fresh process (`run_worker`) so that its peak RSS is
its own and no allocator state or warm cache carries over from the job before it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence

import psutil
import torch

RESULT_PREFIX = "BENCH_RESULT "


def rss_mb() -> float:
    """Resident memory of this process now, in MB."""
    return psutil.Process().memory_info().rss / 2**20


def peak_rss_mb() -> float:
    """Highest resident memory this process (and any child it waited for) has had, in MB."""
    # ru_maxrss is in KiB on Linux (bytes on macOS, where this is not run).
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def matmul_flops(size: int = 1024, seconds: float = 1.0) -> float:
    """fp32 FLOP/s of `size`×`size` matrix products on the CPU, at torch's current threads.

    The best of several timed bursts: the rate the machine can reach right now, which is
    what "share of the matmul rate" compares a trainer with.
    """
    a, b = torch.randn(size, size), torch.randn(size, size)
    out = torch.empty(size, size)
    for _ in range(3):  # warm-up: thread pool, caches
        torch.mm(a, b, out=out)
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        for _ in range(4):
            torch.mm(a, b, out=out)
        best = max(best, 4 * 2 * size**3 / (time.perf_counter() - start))
    return best


def _busy_cpu_s() -> float:
    """CPU seconds all processes on the machine have used since boot."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wait_for_quiet(max_busy: float = 0.25, timeout: float = 300.0) -> float:
    """Wait (up to `timeout` s) until other processes use < `max_busy` of the machine.

    Returns the busy share last seen. Other jobs on a 2-core machine do not just take their
    share: with 2 torch threads every parallel op waits for the descheduled thread, so a
    trainer that runs many small ops slows down far more than one that runs few.
    """
    deadline = time.monotonic() + timeout
    while True:
        busy = psutil.cpu_percent(interval=1.0) / 100
        if busy < max_busy or time.monotonic() > deadline:
            return busy


class Contention:
    """Share of the machine's CPU that *other* processes used while a child process ran."""

    def __enter__(self) -> Contention:
        self._start = (time.perf_counter(), _busy_cpu_s(), _children_cpu_s())
        return self

    def __exit__(self, *exc: object) -> None:
        wall, busy, own = (
            now - then
            for now, then in zip(
                (time.perf_counter(), _busy_cpu_s(), _children_cpu_s()), self._start, strict=True
            )
        )
        self.share = max(0.0, (busy - own) / (wall * (os.cpu_count() or 1)))


def emit_result(result: dict) -> None:
    """Hand a worker's result to the parent (one tagged JSON line on stdout)."""
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def run_worker(argv: Sequence[str], env: dict[str, str] | None = None) -> dict:
    """Run `python argv...` in a fresh process and return the result it emitted."""
    proc = subprocess.run(
        [sys.executable, *argv],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    lines = [x for x in proc.stdout.splitlines() if x.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise RuntimeError(f"worker {' '.join(argv)} failed with exit code {proc.returncode}")
    return json.loads(lines[-1].removeprefix(RESULT_PREFIX))


def run_quietly(
    argv: Sequence[str],
    env: dict[str, str] | None = None,
    *,
    wait: float = 300.0,
    max_others: float = 0.1,
    retries: int = 2,
) -> dict:
    """`run_worker` once the machine is quiet; run again (up to `retries` times) when other
    processes took more than `max_others` of the CPUs meanwhile. The result carries that
    share as `others_share`."""
    for attempt in range(retries + 1):
        wait_for_quiet(timeout=wait)
        with Contention() as others:
            result = run_worker(argv, env)
        result["others_share"] = others.share
        if others.share <= max_others or attempt == retries:
            return result
        print(
            f"  other processes used {100 * others.share:.0f}% of the CPUs: running again",
            file=sys.stderr,
            flush=True,
        )
    raise AssertionError("unreachable")


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def trl_parser(
    description: str, models: Sequence[str], worker_paths: Sequence[str]
) -> argparse.ArgumentParser:
    """Arguments shared by the gro-against-TRL benchmarks; `worker_paths` are the hidden
    path arguments a worker process gets from its parent (besides --model and --out)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--models", default=",".join(models), help="comma-separated builtins")
    parser.add_argument("--rounds", type=int, default=3, help="gro+TRL pairs per model")
    parser.add_argument("--small-rounds", type=int, default=2, help="rounds for small-llama")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument(
        "--wait", type=float, default=300, help="max s to wait for a quiet machine before each run"
    )
    parser.add_argument(
        "--max-others", type=float, default=0.1, help="CPU share of other jobs that voids a run"
    )
    parser.add_argument("--retries", type=int, default=2, help="reruns of a voided run")
    parser.add_argument(
        "--trl-no-gradient-checkpointing",
        action="store_true",
        help="turn off TRL's default activation recomputation (same compute per step as gro)",
    )
    parser.add_argument("--worker", choices=("gro", "trl"), help=argparse.SUPPRESS)
    for name in ("model", *worker_paths, "out"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    return parser
