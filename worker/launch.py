"""Jobs of several processes (resources.nproc_per_node > 1, or nnodes > 1): torchrun's elastic
launcher (torch.distributed.launcher.api) inside the job's child process.

    worker ── supervise ── child (this module's `launch`: the elastic agent) ── rank 0 .. N-1

The child is the elastic agent of its machine: it meets the job's other machines at a c10d
rendezvous (hosted by the first worker's agent) and starts this machine's ranks, each running
`rank_main`. The supervisor watches the child and everything below it as it does a
one-process job (heartbeat, cancel, time limit, the memory cap over the whole tree), and a
SIGKILL of the child ends every rank (they die with their agent).

Global rank 0, whichever machine it landed on, writes the job's metrics, events and
checkpoints through a DbWriter, as a one-process job does; the other ranks write nothing. Each
rank leaves how it ended in the attempt's folder on the shared storage (`rank-R.json`), which
is how the first worker learns the job's fields, or why it failed, from a rank on another
machine. A rank killed outright (SIGKILL: a lost rank, a pre-empted machine) makes the attempt
`requeue`: the job is queued again and resumes from its last checkpoint; unless it was killed
for memory (worker.oom), which fails the job `out_of_memory`. So does a machine lost mid-run:
the ranks left see their collectives' connections close, and with no rank's own error to tell,
the attempt is re-queued. Each rank also touches its own
pulse file, which the watcher reads to tell a rank holding its interpreter lock (hung).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from worker.lifetime import die_with_parent
from worker.oom import OomCounts, peak_child_rss

SHUTDOWN_S = 5  # how long the agent lets a rank exit on SIGTERM before it kills it
PULSE_S = 0.5  # how often a rank touches its pulse file


@dataclass(frozen=True)
class Node:
    """This machine's place in a job: how many machines, where the rendezvous is, whether this
    agent hosts it."""

    nnodes: int = 1
    endpoint: str = ""
    is_host: bool = True
    join_timeout_s: float = 300.0

    def as_payload(self) -> dict[str, Any]:
        return {
            "nnodes": self.nnodes,
            "endpoint": self.endpoint,
            "is_host": self.is_host,
            "join_timeout_s": self.join_timeout_s,
        }


@dataclass(frozen=True)
class Resources:
    """What a stored job document asks for (resources; absent: one process, one machine)."""

    nproc_per_node: int = 1
    nnodes: int = 1

    @property
    def launched(self) -> bool:
        """Whether the job runs under the elastic launcher rather than in the child itself."""
        return self.nproc_per_node > 1 or self.nnodes > 1

    @classmethod
    def of(cls, document: dict[str, Any]) -> Resources:
        section = document.get("resources") or {}
        return cls(int(section.get("nproc_per_node") or 1), int(section.get("nnodes") or 1))


def free_port(host: str = "") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def attempt_dir(storage_dir: Path | str, job_id: str, attempt: int) -> Path:
    """Where the ranks of one attempt leave how they ended (shared by every machine)."""
    return Path(storage_dir) / "jobs" / job_id / ".launch" / f"attempt-{attempt}"


def _config(payload: dict[str, Any], resources: Resources, node: Node) -> Any:
    from torch.distributed.launcher.api import LaunchConfig

    timeout = max(1, round(node.join_timeout_s))
    return LaunchConfig(
        min_nodes=resources.nnodes,
        max_nodes=resources.nnodes,
        nproc_per_node=resources.nproc_per_node,
        run_id=f"{payload['job_id']}-{payload['attempt']}",
        rdzv_backend="c10d",
        rdzv_endpoint=node.endpoint,
        rdzv_configs={
            "is_host": node.is_host,
            "join_timeout": timeout,
            "timeout": timeout,
            # Once the last machine arrived, start at once (the default waits 30 s more).
            "last_call_timeout": 1,
        },
        # A lost rank re-queues the job (it resumes from its checkpoint, its outputs after it
        # dropped), rather than the agent restarting ranks behind the database's back.
        max_restarts=0,
        monitor_interval=0.25,
        start_method="spawn",
        # The child ignores SIGINT/SIGTERM (the worker decides what they mean): so must the
        # agent, which would otherwise tear the ranks down on a Ctrl-C of the worker.
        signals_to_handle="SIGHUP",
        shutdown_timeout=SHUTDOWN_S,
    )


def launch(payload: dict[str, Any]) -> tuple[str, Any]:
    """Run the attempt's ranks on this machine to their end: the child's message, as
    ("done", fields), ("failed", (code, message)), ("lost", None), ("requeue", reason), or
    ("joined", None) on a machine other than the first."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.elastic.rendezvous.api import RendezvousTimeoutError
    from torch.distributed.launcher.api import elastic_launch

    resources = Resources.of(payload["document"])
    node = Node(**payload["node"])
    folder = attempt_dir(payload["settings"]["storage_dir"], payload["job_id"], payload["attempt"])
    folder.mkdir(parents=True, exist_ok=True)
    kills = OomCounts.now()  # the kernel's counts so far: a rank it kills later adds one
    try:
        elastic_launch(_config(payload, resources, node), rank_main)(payload, str(folder))
    except RendezvousTimeoutError:
        return "failed", (
            "nodes_missing",
            f"the job asks for {resources.nnodes} machines (resources.nnodes) and not all of "
            f"them joined its rendezvous at {node.endpoint} within {node.join_timeout_s:g}s "
            "(GRO_NODE_JOIN_TIMEOUT_S): too few workers offer "
            f"{resources.nproc_per_node} processes (gro worker --procs)",
        )
    except ChildFailedError as exc:
        memory = _out_of_memory(payload, resources, kills)
        return _failed_ranks(exc, folder, memory)
    if not node.is_host:
        return "joined", None
    return _ended(folder, 0) or ("failed", ("error", "rank 0 ended without a result"))


def _ended(folder: Path, rank: int) -> tuple[str, Any] | None:
    path = folder / f"rank-{rank}.json"
    if not path.is_file():
        return None
    kind, value = json.loads(path.read_text())
    return kind, value


def _out_of_memory(payload: dict[str, Any], resources: Resources, kills: OomCounts) -> str:
    """Why a rank killed outright was out of memory ("" if nothing says it was): the kernel's
    out-of-memory killer counted a kill since the launch (worker.oom), or a rank (all reaped
    by now) peaked over its share of the job's memory cap (GRO_MAX_JOB_RSS_BYTES, which the
    watcher checks only once a second: a cgroup limit or the kernel can be quicker)."""
    killed = OomCounts.now().killed_since(kills)
    if killed:
        return killed
    cap = payload["settings"].get("max_job_rss_bytes")
    peak = peak_child_rss()
    if cap is not None and peak > cap / resources.nproc_per_node:
        return (
            f"at a peak of {peak / 2**20:.0f} MiB, over its share of the per-job cap of "
            f"{cap / 2**20:.0f} MiB (GRO_MAX_JOB_RSS_BYTES) over {resources.nproc_per_node} ranks"
        )
    return ""


def _failed_ranks(exc: Any, folder: Path, memory: str = "") -> tuple[str, Any]:
    """Why ranks failed: one killed outright fails the job `out_of_memory` if `memory` says
    why, else re-queues the attempt; else the first rank's own error (a rank whose peer
    failed may only report the broken connection)."""
    killed = [r for r, f in exc.failures.items() if f.exitcode == -signal.SIGKILL]
    if killed and memory:
        return "failed", (
            "out_of_memory",
            f"rank {killed[0]} of the job was killed (SIGKILL) {memory}; try a smaller "
            "batch_size, max_new_tokens or LoRA",
        )
    if killed:
        return "requeue", f"rank {killed[0]} of the job was killed (SIGKILL)"
    # Every rank's file, this machine's and the others' (the folder is on shared storage): a
    # rank's own error outranks its peers' broken connections, wherever it ran.
    ended = sorted(_every_ended(folder).items(), key=lambda e: _PRIORITY.get(e[1][0], 9))
    for rank, (kind, value) in ended:
        if kind in ("failed", "lost"):
            return kind, value
        if kind == "peer_lost":
            return "requeue", (
                f"rank {rank} lost its connection to another rank ({value[1]}), and no rank "
                "reported an error of its own: a machine of the job or its worker was lost"
            )
    rank, failure = min(exc.failures.items())
    return "failed", ("error", f"rank {rank} exited ({failure.exitcode}): {failure.message}")


_PRIORITY = {"lost": 0, "failed": 1, "peer_lost": 2}


def _every_ended(folder: Path) -> dict[int, tuple[str, Any]]:
    found = {}
    for path in folder.glob("rank-*.json"):
        kind, value = json.loads(path.read_text())
        found[int(path.stem.removeprefix("rank-"))] = (kind, value)
    return dict(sorted(found.items()))


# What the collective backends say when the rank at the other end is gone (gloo raises a plain
# RuntimeError; NCCL's errors are torch.distributed.DistError).
_PEER_GONE = ("connection closed by peer", "connection reset by peer", "broken pipe")


def peer_lost(exc: BaseException) -> bool:
    """Whether `exc` is a collective failing because another rank (a lost machine) is gone."""
    import torch.distributed as dist

    if isinstance(exc, dist.DistError):
        return True
    return isinstance(exc, RuntimeError) and any(w in str(exc).lower() for w in _PEER_GONE)


def _write(folder: Path, rank: int, kind: str, value: Any) -> None:
    path = folder / f"rank-{rank}.json"
    partial = path.with_suffix(".part")
    partial.write_text(json.dumps([kind, value]))
    partial.replace(path)


def _pulse(path: Path) -> None:
    """Touch `path` every PULSE_S from a thread: a file that grows old means one call holds
    this rank's interpreter lock (the watcher sees it, where the agent's own pulse runs on)."""

    def loop() -> None:
        # utime, not touch: once the rank removed its file at its end, it stays removed.
        while True:
            try:
                os.utime(path)
            except FileNotFoundError:
                return
            time.sleep(PULSE_S)

    path.touch()
    threading.Thread(target=loop, daemon=True, name="pulse").start()


def rank_main(payload: dict[str, Any], folder: str) -> None:
    """One rank (a process the agent spawned): rank 0 trains and writes through a DbWriter,
    the others train beside it; each leaves how it ended in `folder`, and beats in its pulse
    file (`payload["pulses"]`, on this machine) while it runs."""
    die_with_parent(os.getppid())  # a rank never outlives its agent
    rank = int(os.environ["RANK"])
    pulse = Path(payload["pulses"]) / f"rank-{rank}" if payload.get("pulses") else None
    if pulse is not None:
        _pulse(pulse)
    try:
        _run_rank(payload, folder, rank)
    finally:  # a rank that ended is not hung: its file would grow old while its peers finish
        if pulse is not None:
            pulse.unlink(missing_ok=True)


def _run_rank(payload: dict[str, Any], folder: str, rank: int) -> None:
    # Inherited from the child: ignore Ctrl-C; but the agent stops its ranks with SIGTERM.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    from server.config import Settings
    from worker.callback import JobLostError
    from worker.execute import execute, failure, run_rank

    settings = Settings.model_validate(payload["settings"])
    checkpoint = payload["checkpoint"]
    resume = None if checkpoint is None else (checkpoint[0], Path(checkpoint[1]))
    args = (settings, payload["kind"], payload["job_id"], payload["attempt"], payload["document"])
    try:
        fields = execute(*args, resume) if rank == 0 else run_rank(*args, resume)
    except JobLostError:
        _write(Path(folder), rank, "lost", None)
        raise
    except Exception as exc:
        _write(Path(folder), rank, "peer_lost" if peer_lost(exc) else "failed", failure(exc))
        raise
    _write(Path(folder), rank, "done", fields)
