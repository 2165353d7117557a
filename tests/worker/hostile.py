"""Python rewards a hostile or careless user might submit; the worker tests run them in the
job's child process (GRO_TEST_MARKS names a folder where each leaves a file once it runs)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path


def _mark(name: str) -> None:
    folder = os.environ.get("GRO_TEST_MARKS")
    if folder:
        (Path(folder) / f"{name}-{os.getpid()}").touch()


def hostile(reward: str, **train: object) -> dict:
    """An online job whose only reward is one of this module's."""
    return {
        "model": "builtin:tiny-llama",
        "method": "grpo",
        "data": {"task": "builtin:arithmetic"},
        "rewards": [{"type": "python", "path": f"tests.worker.hostile:{reward}"}],
        "train": {"steps": 4, "batch_size": 2, **train},
        "rollout": {"num_generations": 2, "max_new_tokens": 4},
        "eval": {"every": 0},
    }


def holds_the_gil(completions: list[str], rows: list[dict]) -> list[float]:
    """Backtracking regex in C: exponential time, and no other thread of its process runs."""
    _mark("gil")
    re.match(r"(a|aa)*b", "a" * 60)
    return [0.0] * len(completions)


def sleeps(completions: list[str], rows: list[dict]) -> list[float]:
    _mark("sleep")
    time.sleep(120)
    return [0.0] * len(completions)


def takes_a_while(completions: list[str], rows: list[dict]) -> list[float]:
    """A quarter of a second per call: a job that lasts as long on any machine."""
    time.sleep(0.25)
    return [0.0] * len(completions)


def eats_memory(completions: list[str], rows: list[dict]) -> list[float]:
    """Grows by 64 MiB every 20 ms (written, so resident), up to 4 GiB."""
    _mark("memory")
    held = []
    for _ in range(64):
        held.append(b"x" * (64 * 2**20))
        time.sleep(0.02)
    return [0.0] * len(completions)


def eats_memory_on_one_rank(completions: list[str], rows: list[dict]) -> list[float]:
    """eats_memory on the last rank of a job of several processes; the others stay small."""
    if os.environ.get("RANK") == str(int(os.environ.get("WORLD_SIZE", "1")) - 1):
        return eats_memory(completions, rows)
    return [0.0] * len(completions)


def reports_niceness(completions: list[str], rows: list[dict]) -> list[float]:
    """Leaves the niceness the reward ran at (and `-idle` under SCHED_IDLE), as the mark's
    name."""
    idle = os.sched_getscheduler(0) == os.SCHED_IDLE
    _mark(f"nice{os.nice(0)}{'-idle' if idle else ''}")
    return [0.0] * len(completions)
