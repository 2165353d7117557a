"""`gro train SPEC --out DIR [--resume]`: run a job spec locally with a progress bar.

A spec whose resources ask for several processes (nproc_per_node × nnodes > 1) is launched
here with torch's elastic launcher (the API behind torchrun): this process becomes the
machine's agent and starts its ranks, each running the same training with RANK/WORLD_SIZE
set. Under torchrun already (RANK set), this process is a rank and just trains.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gro_core.cli.quiet import quiet_libraries
from gro_core.spec import JobSpec, SpecError, format_validation_error, load_spec

DEFAULT_MASTER_PORT = 29500  # torchrun's


@dataclass(frozen=True)
class Rendezvous:
    """Where the machines of a multi-machine run meet (`--master-addr`/`--master-port`) and
    which of them this is (`--node-rank`; 0 hosts the rendezvous)."""

    master_addr: str | None = None
    master_port: int | None = None
    node_rank: int | None = None


class LaunchError(ValueError):
    """Options that cannot start the spec's processes; the message names the option."""


def train_command(
    spec_path: str,
    out: str,
    *,
    resume: bool = False,
    quiet: bool = False,
    rendezvous: Rendezvous | None = None,
) -> int:
    """Exit code 0 on success, 1 when the run (or one of its ranks) failed, 2 when the spec
    or the launch options are invalid."""
    spec = _load(spec_path)
    if spec is None:
        return 2
    if spec.resources.world_size > 1 and "RANK" not in os.environ:
        try:
            config = launch_config(spec, rendezvous or Rendezvous())
        except LaunchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return _launch(config, (spec_path, out, resume, quiet))
    try:
        return _train(spec, Path(out), resume=resume, quiet=quiet)
    except Exception as exc:
        if not _is_training_error(exc):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _load(spec_path: str) -> JobSpec | None:
    try:
        return load_spec(Path(spec_path))
    except (ValidationError, SpecError) as exc:
        for problem in format_validation_error(exc):
            print(
                f"{spec_path}: {problem['path'] or '<root>'}: {problem['message']}", file=sys.stderr
            )
    except FileNotFoundError:
        print(f"{spec_path}: no such file", file=sys.stderr)
    return None


def _is_training_error(exc: BaseException) -> bool:
    from gro_core.trainers import DataError, TrainingError

    return isinstance(exc, DataError | SpecError | TrainingError)


def _train(spec: JobSpec, out_dir: Path, *, resume: bool, quiet: bool) -> int:
    """Train in this process; raises the trainer's errors after recording them."""
    quiet_libraries()
    # Imported once the spec is valid: an invalid one is reported without loading torch.
    from gro_core.trainers import JsonlWriter, ProgressBar, run

    # Under a launcher only rank 0 writes the run directory and talks (the loop also keeps
    # the callbacks of the other ranks silent); the others just train beside it.
    main_rank = int(os.environ.get("RANK", "0")) == 0
    writer = JsonlWriter(out_dir) if main_rank else None
    callbacks = [] if writer is None else [writer] if quiet else [writer, ProgressBar()]
    try:
        result = run(spec, out_dir, callbacks, resume=resume)
    except Exception as exc:
        if writer is not None and _is_training_error(exc):
            writer.on_event(getattr(exc, "step", None) or 0, "failed", str(exc))
        raise
    finally:
        if writer is not None:
            writer.close()
    if main_rank:
        _print_result(result, out_dir)
    return 0


def _print_result(result: Any, out_dir: Path) -> None:
    shown = ", ".join(
        f"{k}={v:.4g}"
        for k, v in sorted(result.final_metrics.items())
        if k.startswith(("eval/", "loss/"))
    )
    print(f"{result.status}: {result.steps} steps in {result.wall_time_s:.1f}s -> {out_dir}")
    if shown:
        print(shown)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def launch_config(spec: JobSpec, rendezvous: Rendezvous) -> Any:
    """The elastic launcher's configuration for this machine's share of the spec's ranks: one
    machine meets itself on a free local port; several meet at --master-addr (c10d)."""
    resources = spec.resources
    if resources.nnodes == 1:
        endpoint, is_host = f"127.0.0.1:{_free_port()}", True
    else:
        if rendezvous.master_addr is None or rendezvous.node_rank is None:
            raise LaunchError(
                f"resources.nnodes is {resources.nnodes}: a run on several machines needs "
                "--master-addr (the machine of node rank 0, which hosts the rendezvous) and "
                "--node-rank (this machine's, 0..nnodes-1); run the same command on each"
            )
        if not 0 <= rendezvous.node_rank < resources.nnodes:
            raise LaunchError(
                f"--node-rank {rendezvous.node_rank}: must be 0..{resources.nnodes - 1} "
                f"(resources.nnodes is {resources.nnodes})"
            )
        port = rendezvous.master_port or DEFAULT_MASTER_PORT
        endpoint, is_host = f"{rendezvous.master_addr}:{port}", rendezvous.node_rank == 0
    from torch.distributed.launcher.api import LaunchConfig

    return LaunchConfig(
        min_nodes=resources.nnodes,
        max_nodes=resources.nnodes,
        nproc_per_node=resources.nproc_per_node,
        run_id="gro-train",
        rdzv_backend="c10d",
        rdzv_endpoint=endpoint,
        # Once the last machine arrived, start at once (the default waits 30 s more).
        rdzv_configs={"is_host": is_host, "last_call_timeout": 1},
        # A failed rank fails the run; `--resume` continues it from its last checkpoint.
        max_restarts=0,
        monitor_interval=0.25,
        start_method="spawn",
    )


def _launch(config: Any, args: tuple[str, str, bool, bool]) -> int:
    """Run this machine's ranks to their end; a failed rank is named in the exit message."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.elastic.rendezvous.api import RendezvousError
    from torch.distributed.launcher.api import elastic_launch

    # As torchrun does: N processes of a CPU's threads each would oversubscribe it.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    print(
        f"gro train: {config.nproc_per_node} processes on this machine, "
        f"{config.nproc_per_node * config.max_nodes} in all (rendezvous {config.rdzv_endpoint})",
        file=sys.stderr,
    )
    try:
        elastic_launch(config, rank_main)(*args)
    except ChildFailedError as exc:
        rank, failure = min(exc.failures.items())
        # The rank's recorded error is {"message": ..., "extraInfo": {traceback}}; a rank
        # killed outright has only the launcher's text.
        message = failure.message
        if isinstance(message, dict):
            message = message.get("message", message)
        print(
            f"error: rank {rank} of {config.nproc_per_node * config.max_nodes} failed "
            f"(exit code {failure.exitcode}): {message}",
            file=sys.stderr,
        )
        return 1
    except RendezvousError as exc:
        print(f"error: the machines did not meet at {config.rdzv_endpoint}: {exc}", file=sys.stderr)
        return 1
    return 0


def rank_main(spec_path: str, out: str, resume: bool, quiet: bool) -> None:
    """One rank the launcher spawned: train; a training error is recorded for the agent (its
    message names the rank's failure) and the rank exits 1 without a traceback."""
    spec = load_spec(Path(spec_path))
    try:
        _train(spec, Path(out), resume=resume, quiet=quiet)
    except Exception as exc:
        if not _is_training_error(exc):
            raise
        from torch.distributed.elastic.multiprocessing.errors import get_error_handler

        print(f"error: rank {os.environ.get('RANK')}: {exc}", file=sys.stderr)
        get_error_handler().record_exception(exc)
        raise SystemExit(1) from None
