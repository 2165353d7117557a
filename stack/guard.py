"""What keeps `gro up` from leaving anything behind, however it stops, and from sharing its
data folder with another one.

    .gro/up.pid       {"pid", "started", "children": [{"name", "pid", "started"}]} of the
                      running `gro up`: a second one on the folder finds it
    .gro/secret-key   the random secret that signs download links (mode 0600), made once

Children die with `gro up` even when it is killed outright (SIGKILL, an OOM kill): each is
started with PR_SET_PDEATHSIG (Linux), so the kernel ends it when its parent goes.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

PID_FILE = "up.pid"
SECRET_FILE = "secret-key"
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> Callable[[], None] | None:
    """A Popen `preexec_fn` that has the kernel SIGKILL the child when this process dies;
    None where the platform has no such thing."""
    if not sys.platform.startswith("linux"):
        return None
    parent = os.getpid()
    libc = ctypes.CDLL(None, use_errno=True)

    def arm() -> None:  # runs in the child between fork and exec: no allocation-heavy work
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the call took effect
            os._exit(1)

    return arm


def say(text: str, *, err: bool = False) -> None:
    """Print, but never fail: stdout may be a pipe whose reader is gone (`gro up | tee` after
    Ctrl-C), and a failed print must not stop the clean-up that follows it."""
    stream = sys.stderr if err else sys.stdout
    with contextlib.suppress(OSError, ValueError):
        print(text, file=stream, flush=True)


def secret_key(data_dir: Path) -> str:
    """This folder's link-signing secret: random, made on the first start, private (0600)."""
    path = data_dir / SECRET_FILE
    if path.is_file():
        return path.read_text().strip()
    key = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key + "\n")
    return key


def _record(pid: int) -> dict[str, Any]:
    try:
        started = psutil.Process(pid).create_time()
    except psutil.Error:  # it exited already: nothing of it can be left running
        started = 0.0
    return {"pid": pid, "started": started}


def _alive(entry: dict[str, Any]) -> bool:
    """Whether the process of `entry` still runs (the same one: a pid can be reused)."""
    try:
        process = psutil.Process(entry["pid"])
        return (
            process.create_time() == entry["started"] and process.status() != psutil.STATUS_ZOMBIE
        )
    except (psutil.Error, KeyError):
        return False


def claim_folder(data_dir: Path) -> str | None:
    """Write this process's pid file, or raise RuntimeError saying what to do when another
    `gro up` runs on the folder, or when one died leaving processes behind. A stale file
    (nothing of it runs) is replaced; the returned note says so."""
    path = data_dir / PID_FILE
    note = None
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except ValueError:
            old = {}
        if old and _alive(old):
            raise RuntimeError(
                f"gro up is already running on {data_dir} (pid {old['pid']}): use it, stop it "
                f"(kill {old['pid']}), or pass another --data-dir"
            )
        left = [c for c in old.get("children", []) if _alive(c)]
        if left:
            pids = " ".join(str(c["pid"]) for c in left)
            names = ", ".join(f"{c['name']} (pid {c['pid']})" for c in left)
            raise RuntimeError(
                f"a gro up on {data_dir} (pid {old.get('pid')}) died leaving {names} running: "
                f"stop them (kill {pids}), then start again"
            )
        note = f"a previous gro up on {data_dir} (pid {old.get('pid')}) did not stop cleanly; "
        note += "nothing of it is left running: starting afresh"
    write_pid_file(data_dir, [])
    return note


def write_pid_file(data_dir: Path, children: list[tuple[str, int]]) -> None:
    """This process and its children (name, pid), written in one rename."""
    body = _record(os.getpid()) | {
        "children": [{"name": name} | _record(pid) for name, pid in children]
    }
    tmp = data_dir / f"{PID_FILE}.tmp"
    tmp.write_text(json.dumps(body))
    tmp.replace(data_dir / PID_FILE)


def release_folder(data_dir: Path) -> None:
    """Remove the pid file if it is this process's."""
    path = data_dir / PID_FILE
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
