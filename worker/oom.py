"""Whether a rank killed outright (SIGKILL) ran out of memory: the kernel's out-of-memory killer
and a memory cap both kill without a word, and a pre-empted machine or a `kill -9` look the
same from the rank's exit. Two witnesses tell them apart: the memory cgroup's `oom_kill`
counter (when this machine exposes it), and the killed rank's peak resident memory, which its
agent learns exactly when it reaps the rank (getrusage of its children)."""

from __future__ import annotations

import resource
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _cgroup_files(root: Path, proc: Path) -> list[Path]:
    """The files holding this process's `oom_kill` counter: memory.events (cgroup v2) or
    memory.oom_control (v1)."""
    files = []
    for line in proc.read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            files.append(root / path.lstrip("/") / "memory.events")
        elif "memory" in controllers.split(","):
            files.append(root / "memory" / path.lstrip("/") / "memory.oom_control")
    return files


def oom_kills(root: Path = CGROUP_ROOT, proc: Path = Path("/proc/self/cgroup")) -> int | None:
    """How many processes the kernel's out-of-memory killer ended in this process's memory
    cgroup (and below it); None where no counter is readable (not Linux, no cgroup mounted)."""
    try:
        files = _cgroup_files(root, proc)
    except OSError:
        return None
    for path in files:
        try:
            lines = path.read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            name, _, value = line.partition(" ")
            if name == "oom_kill":
                return int(value)
    return None


def peak_child_rss() -> int:
    """Bytes: the largest peak resident memory of the children this process has reaped (Linux
    reports KiB)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
