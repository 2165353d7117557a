"""Whether a rank killed outright (SIGKILL) ran out of memory: the kernel's out-of-memory killer
and a memory cap both kill without a word, and a pre-empted machine or a `kill -9` look the
same from the rank's exit. Witnesses tell them apart: the memory cgroup's `oom_kill` counter
(when this machine exposes it), else the kernel's machine-wide one (/proc/vmstat, Linux 4.13
and later: a kill of another process at the same moment would be taken for the rank's), and
the killed rank's peak resident memory, which its agent learns exactly when it reaps the rank
(getrusage of its children)."""

from __future__ import annotations

import resource
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
VMSTAT = Path("/proc/vmstat")


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


def _oom_kill_line(path: Path) -> int | None:
    """The value of a counter file's `oom_kill N` line; None if the file or the line is missing."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        name, _, value = line.partition(" ")
        if name == "oom_kill":
            return int(value)
    return None


def oom_kills(root: Path = CGROUP_ROOT, proc: Path = Path("/proc/self/cgroup")) -> int | None:
    """How many processes the kernel's out-of-memory killer ended in this process's memory
    cgroup (and below it); None where no counter is readable (not Linux, no cgroup mounted)."""
    try:
        files = _cgroup_files(root, proc)
    except OSError:
        return None
    for path in files:
        found = _oom_kill_line(path)
        if found is not None:
            return found
    return None


def machine_oom_kills(vmstat: Path = VMSTAT) -> int | None:
    """How many processes the kernel's out-of-memory killer ended on this machine since boot;
    None where /proc/vmstat has no such line (not Linux, or a kernel before 4.13)."""
    return _oom_kill_line(vmstat)


@dataclass(frozen=True)
class OomCounts:
    """The kill counters at one moment: the memory cgroup's, and the machine's."""

    cgroup: int | None
    machine: int | None

    @classmethod
    def now(cls) -> OomCounts:
        return cls(oom_kills(), machine_oom_kills())

    def killed_since(self, before: OomCounts) -> str:
        """How a kill since `before` was counted ("" if none was): by the cgroup's counter
        where it is readable (then it alone answers), else by the machine's."""
        if self.cgroup is not None and before.cgroup is not None:
            if self.cgroup > before.cgroup:
                return "by the system's out-of-memory killer (the memory cgroup counted the kill)"
            return ""
        if (
            self.machine is not None
            and before.machine is not None
            and self.machine > before.machine
        ):
            return (
                "by the kernel's out-of-memory killer (no memory cgroup counter is readable "
                "here; the machine's count of such kills grew during the run)"
            )
        return ""


def peak_child_rss() -> int:
    """Bytes: the largest peak resident memory of the children this process has reaped (Linux
    reports KiB)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
