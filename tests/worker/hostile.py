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


def holds_the_gil(completions: list[str], rows: list[dict]) -> list[float]:
    """Backtracking regex in C: exponential time, and no other thread of its process runs."""
    _mark("gil")
    re.match(r"(a|aa)*b", "a" * 60)
    return [0.0] * len(completions)


def sleeps(completions: list[str], rows: list[dict]) -> list[float]:
    _mark("sleep")
    time.sleep(120)
    return [0.0] * len(completions)


def eats_memory(completions: list[str], rows: list[dict]) -> list[float]:
    """Grows by 64 MiB every 20 ms (written, so resident), up to 4 GiB."""
    _mark("memory")
    held = []
    for _ in range(64):
        held.append(b"x" * (64 * 2**20))
        time.sleep(0.02)
    return [0.0] * len(completions)
