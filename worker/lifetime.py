"""A job's processes end with the process that started them: the job's child with its
worker, a rank of a multi-process job with its elastic agent."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1


def die_with_parent(worker_pid: int) -> None:
    """End this process (SIGKILL) when the worker `worker_pid` dies, so a job never outlives it
    (the reconciler would hand it to another worker while this one still wrote outputs).

    The process forked us from its fork server, which exits when the worker does (its pipe
    from the worker closes): PR_SET_PDEATHSIG on that server ends us then; the watch thread
    covers other platforms and a server that lingers."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    server_pid = os.getppid()
    if not _alive(worker_pid):  # it died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while _alive(worker_pid) and os.getppid() == server_pid:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else (a reused pid): treat as alive
        return True
    return True
