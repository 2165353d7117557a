"""The worker's side of a job run in a child process (GRO_JOB_ISOLATION=process).

    outcome = supervise(settings, kind, job_id, attempt, document, checkpoint)

The child (worker.child) trains or evaluates; this process, which runs nothing heavy, keeps
what must never stall with the job: the heartbeat, the cancel request, the memory cap, the time
limit and the hung-job check. Each poll it looks at the child's message, its exit, its memory
(the child and what it started), its pulse and, about once a second, the job row. Whatever the
child is doing (mid-step, mid-rollout, in a reward, building data, holding the interpreter
lock), ending it is a SIGKILL away, so cancel and the limits act within seconds.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from multiprocessing import forkserver
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any

import psutil

from server.config import Settings
from server.db import jobs as db_jobs
from server.db.session import session_scope
from worker.child import child_main, child_ready
from worker.launch import Node

log = logging.getLogger("gro.worker")

POLL_S = 0.25
CHECK_S = 1.0  # how often the job row (cancel) and the child's memory are read
REAP_S = 10.0  # how long a child that reported may take to exit before it is killed
PRELOAD = ("worker.child", "worker.execute")  # what the fork server imports once


@dataclass
class Outcome:
    """How the child's run ended: done (fields of the job row), failed (code, message), lost
    (the job was taken from this attempt), cancelled (ended where it was), requeue (a rank of
    a multi-process job was killed: `message` says which) or joined (this machine's ranks of a
    job another worker owns ended)."""

    kind: str
    fields: dict[str, Any] | None = None
    code: str = ""
    message: str = ""
    reported: bool = False
    """The child sent it (its run ended by itself) rather than this process deciding it."""


def _rss(process: psutil.Process) -> int:
    """Resident bytes of the child and every process below it (rollout engines, loaders)."""
    total = 0
    for p in [process, *process.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:  # exited between the listing and the read
            continue
    return total


def kill_tree(pid: int) -> None:
    """SIGKILL the process `pid` and all below it (children first listed, then killed)."""
    try:
        root = psutil.Process(pid)
        tree = [*root.children(recursive=True), root]
    except psutil.NoSuchProcess:
        return
    for p in tree:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            continue


def _exit_outcome(exitcode: int | None) -> Outcome:
    """A child that exited without reporting: killed by the system (most often the
    out-of-memory killer: SIGKILL) or crashed."""
    if exitcode == -signal.SIGKILL:
        return Outcome(
            "failed",
            code="out_of_memory",
            message="the job's process was killed (SIGKILL), most likely by the system's "
            "out-of-memory killer; try a smaller batch_size or LoRA",
        )
    how = f"signal {signal.Signals(-exitcode).name}" if exitcode and exitcode < 0 else exitcode
    return Outcome("failed", code="error", message=f"the job's process exited ({how})")


def time_limit(settings: Settings, kind: str) -> tuple[float, str] | None:
    """(seconds, the variable that sets them) one attempt at a job of `kind` may run: a
    generation's own short limit, or the job limit when that is shorter; None: no limit."""
    limits = [(settings.job_time_limit_s, "GRO_JOB_TIME_LIMIT_S")]
    if kind == "generation":
        limits.append((settings.generation_time_limit_s, "GRO_GENERATION_TIME_LIMIT_S"))
    set_limits = [(s, v) for s, v in limits if s is not None]
    return min(set_limits) if set_limits else None


class Watch:
    """The limits of one running child; `check` says why it must end, if it must."""

    def __init__(
        self,
        settings: Settings,
        job_id: str,
        attempt: int,
        pid: int,
        beat: Any,
        kind: str,
        owner: bool,
        pulses: Path | None = None,
    ):
        self.settings, self.job_id, self.attempt, self.beat = settings, job_id, attempt, beat
        self.pulses = pulses  # where this machine's ranks beat, one file each (worker.launch)
        self.time_limit = time_limit(settings, kind)
        self.owner = owner  # False on a machine that joined a job another worker owns
        self.process = psutil.Process(pid)
        self.started = time.monotonic()
        self.next_beat = self.next_check = self.started
        self.cancel_deadline: float | None = None

    def check(self) -> Outcome | None:
        now, s = time.monotonic(), self.settings
        try:
            ended = self._timed(now)
        except Exception:  # a transient database error: the next poll tries again
            log.exception("watching job %s failed", self.job_id)
            ended = None
        if ended is not None:
            return ended
        silent = time.time() - self.beat.value
        if silent > s.job_silent_s:
            return Outcome(
                "failed",
                code="hung",
                message=f"the job stopped responding for {silent:.0f}s (one call held the "
                "interpreter lock, e.g. a reward or a native library); its process was ended",
            )
        return self._silent_rank()

    def _silent_rank(self) -> Outcome | None:
        """A rank whose pulse file grew older than job_silent_s: hung, though its agent (whose
        pulse is `beat`) runs on."""
        if self.pulses is None:
            return None
        for path in sorted(self.pulses.glob("rank-*")):
            try:
                silent = time.time() - path.stat().st_mtime
            except FileNotFoundError:  # the rank ended between the listing and the look
                continue
            if silent > self.settings.job_silent_s:
                rank = path.name.removeprefix("rank-")
                return Outcome(
                    "failed",
                    code="hung",
                    message=f"rank {rank} of the job stopped responding for {silent:.0f}s "
                    "(one call held its interpreter lock, e.g. a reward or a native library); "
                    "the job's processes were ended",
                )
        return None

    def _timed(self, now: float) -> Outcome | None:
        """The heartbeat (every heartbeat_s) and the limits (every CHECK_S) when due."""
        if now >= self.next_beat:
            self.next_beat = now + self.settings.heartbeat_s
            with session_scope(self.settings.database_url) as session:
                held = (db_jobs.beat if self.owner else db_jobs.attempt_running)(
                    session, self.job_id, self.attempt
                )
                if not held:
                    return Outcome("lost")
        if now >= self.next_check:
            self.next_check = now + CHECK_S
            return self._limits(now)
        return None

    def _limits(self, now: float) -> Outcome | None:
        s = self.settings
        if s.max_job_rss_bytes is not None:
            rss = _rss(self.process)
            if rss > s.max_job_rss_bytes:
                return Outcome(
                    "failed",
                    code="out_of_memory",
                    message=f"the job used {rss / 2**20:.0f} MiB, over the per-job cap of "
                    f"{s.max_job_rss_bytes / 2**20:.0f} MiB (GRO_MAX_JOB_RSS_BYTES); try a "
                    "smaller batch_size, max_new_tokens or LoRA",
                )
        if self.time_limit is not None and now - self.started > self.time_limit[0]:
            seconds, variable = self.time_limit
            return Outcome(
                "failed",
                code="time_limit",
                message=f"the job ran past its time limit of {seconds:g}s ({variable})",
            )
        if self.cancel_deadline is None:
            with session_scope(s.database_url) as session:
                if db_jobs.cancel_requested(session, self.job_id):
                    # The run stops itself at its next step boundary, keeping a checkpoint;
                    # one that does not get there in time is ended where it is.
                    self.cancel_deadline = now + s.cancel_grace_s
        elif now >= self.cancel_deadline:
            return Outcome("cancelled")
        return None


def _wait(conn: Connection, child: Any, watch: Watch) -> Outcome:
    while True:
        if conn.poll(POLL_S):
            try:
                kind, value = conn.recv()
            except EOFError:  # it died as it wrote: its exit tells why
                child.join(REAP_S)
                return _exit_outcome(child.exitcode)
            if kind == "failed":
                return Outcome(kind, code=value[0], message=value[1], reported=True)
            if kind == "requeue":
                return Outcome(kind, message=value, reported=True)
            return Outcome(kind, fields=value, reported=True)
        if not child.is_alive():
            return _exit_outcome(child.exitcode)
        ended = watch.check()
        if ended is not None:
            return ended


def _context() -> BaseContext:
    """Children fork from a fork server that imported the trainer once: a spawned child paid
    7-8 s of torch/transformers imports per job. The server is single-threaded, so forking it
    is safe, where forking the worker (heartbeat and broker threads) is not."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(PRELOAD))
    return context


def start_fork_server() -> None:
    """Start the fork server now (its imports take seconds), when the worker starts: at a
    job's start the wait would hold the heartbeat and look like a silent worker."""
    context = _context()
    forkserver.ensure_running()
    # The server imports before it answers: a first (empty) child waits for that here.
    probe = context.Process(target=child_ready, name="gro-fork-server-ready")
    probe.start()
    probe.join()


def supervise(
    settings: Settings,
    kind: str,
    job_id: str,
    attempt: int,
    document: dict[str, Any],
    checkpoint: tuple[int, Path] | None,
    node: Node | None = None,
    owner: bool = True,
) -> Outcome:
    """Run the claimed attempt in a child process and watch it to its end; the child is gone
    (exited or killed) when this returns. With `node`, the child is torchrun's elastic agent
    of this machine (worker.launch), its ranks below it; `owner` False: this machine joined a
    job another worker owns (it checks the job, and leaves the heartbeat to that worker)."""
    context = _context()
    receiver, sender = context.Pipe(duplex=False)
    beat = context.RawValue("d", time.time())
    # Ranks (below the agent, on this machine) beat in files here: local, never shared storage.
    pulses = None if node is None else Path(tempfile.mkdtemp(prefix=f"gro-pulse-{job_id}-"))
    payload = {
        "settings": settings.model_dump(mode="json"),
        "parent_pid": os.getpid(),
        "environ": dict(os.environ),
        "kind": kind,
        "job_id": job_id,
        "attempt": attempt,
        "document": document,
        "checkpoint": checkpoint,
        "node": None if node is None else node.as_payload(),
        "pulses": None if pulses is None else str(pulses),
    }
    child = context.Process(
        target=child_main, args=(payload, sender, beat), name=f"gro-job-{job_id}"
    )
    child.start()
    sender.close()  # the child holds the only writer: its exit closes the pipe
    try:
        watch = Watch(settings, job_id, attempt, child.pid, beat, kind, owner, pulses)
        outcome = _wait(receiver, child, watch)
        if outcome.reported:
            child.join(REAP_S)  # it wrote everything before reporting: let it exit by itself
    finally:  # a limit, a cancel, a loss, or an error here: end it where it is
        kill_tree(child.pid)
        child.join()
        receiver.close()
        if pulses is not None:
            shutil.rmtree(pulses, ignore_errors=True)
    if outcome.kind not in ("done", "joined"):
        log.warning("job %s attempt %s: %s %s", job_id, attempt, outcome.kind, outcome.message)
    return outcome
