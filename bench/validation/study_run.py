"""One run of the validation study v2, in a worker: its job spec (warm-up, tuning or reported
run), training through gro_core's own trainer (`gro_core.trainers.run`, what `gro train`
calls), and the evaluation of its checkpoints (`gro_core.evaluation.runs.evaluate_run`, what
`gro eval` calls), each on the task's held-out prompts with evaluation seed 0 and the KL to the
warm-up the run started from; checkpoints deleted once evaluated unless kept.

Workers are spawned processes of one torch thread each (`workers_map`), so a run's numbers do
not depend on which worker ran it, nor on how many there are. A run whose record is in its
folder is not run again: an interrupted study resumes.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.validation.design import BASELINE, SIZES, Budget, Run

EVAL_SEED = 0
MAX_NEW_TOKENS = 8
MIX_PREFIX = "gro offline_mix="
Say = Callable[[str], None]


def threads_one() -> None:
    """Each worker (and the main process) trains on one thread: reproducible, and N workers
    fit N cores."""
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


def warmup_spec(budget: Budget, run: Run, demos: Path) -> dict[str, Any]:
    steps = run.steps
    return {
        "model": SIZES[run.size],
        "method": "sft",
        "data": {"train": str(demos)},
        "train": {
            "steps": steps,
            "batch_size": budget.warmup_batch,
            "lr": 1e-3,
            "warmup_steps": min(20, steps // 2),
            "seed": 0,
        },
        "eval": {"every": 0},
        "checkpoint": {"every": 0, "keep": 1},
    }


def eval_spec(budget: Budget, task: str, warmup: Path) -> dict[str, Any]:
    """Held-out prompts, reward and sampling every checkpoint of `task` is evaluated with."""
    return {
        "model": str(warmup),
        "method": "gro",
        "data": {"task": f"builtin:{task}"},
        "rollout": {
            "num_generations": budget.generations,
            "max_new_tokens": MAX_NEW_TOKENS,
            "temperature": 1.0,
        },
        "train": {"steps": 1, "seed": EVAL_SEED},
        "eval": {"num_prompts": budget.eval_prompts},
    }


def run_spec(
    budget: Budget, run: Run, warmup: Path, mix_rows: Path | None = None
) -> dict[str, Any]:
    """The job spec of a tuning or reported run at its point (`run.point`: lr, method_args;
    an ablation's or mix variant's point is gro's with its change)."""
    method, args, data = run.variant, dict(run.point["method_args"]), {}
    if run.variant.startswith(MIX_PREFIX):
        method = BASELINE
        data = {"train": str(mix_rows), "offline_mix": float(run.variant[len(MIX_PREFIX) :])}
    elif run.variant not in budget.sizes[run.size].online and run.group == "online":
        method = BASELINE
        args |= budget.sizes[run.size].ablations[run.variant]
    doc: dict[str, Any] = {
        "model": str(warmup),
        "method": method,
        "method_args": args,
        "train": {
            "steps": run.steps,
            "batch_size": budget.batch_size,
            "lr": run.point["lr"],
            "warmup_steps": min(10, run.steps // 2),
            "seed": run.seed,
        },
        "eval": {"every": 0},
        # Reported runs: a checkpoint per evaluation point, all kept until evaluated.
        "checkpoint": {
            "every": budget.eval_every if run.stage == "reported" else 0,
            "keep": run.steps // budget.eval_every + 1,
        },
    }
    if run.group == "online":
        doc["data"] = {"task": f"builtin:{run.task}", **data}
        doc["rollout"] = {
            "num_generations": budget.generations,
            "max_new_tokens": MAX_NEW_TOKENS,
            "temperature": 1.0,
        }
    else:
        doc["data"] = {"task": f"builtin:{run.task}-preference"}
    return doc


def write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def evaluate(checkpoint: Path, spec_path: Path, budget: Budget, reference: bool) -> dict:
    from gro_core.evaluation.runs import evaluate_run

    return evaluate_run(
        str(checkpoint),
        spec_path=spec_path,
        num_prompts=budget.eval_prompts,
        num_generations=budget.generations,
        seed=EVAL_SEED,
        with_reference=reference,
    )


def execute(job: dict[str, Any]) -> dict[str, Any]:
    """Train one run and evaluate its checkpoints: its record (also written to its folder)."""
    threads_one()
    from gro_core.cli.quiet import quiet_libraries
    from gro_core.spec import load_spec
    from gro_core.trainers import run as train

    quiet_libraries()
    run, budget = Run(**job["run"]), job["budget"]
    out = Path(job["out"])
    record_path = out / "record.json"
    if record_path.is_file():  # done before this study was interrupted; failures run again
        cached = json.loads(record_path.read_text())
        if cached["status"] == "succeeded":
            return cached
    record: dict[str, Any] = {**dataclasses.asdict(run), "name": run.name, "evals": {}}
    started, cpu = time.perf_counter(), time.process_time()
    try:
        if out.exists():
            shutil.rmtree(out)  # a run interrupted before its record: start it over
        train(load_spec(job["spec"]), out, [])
        record["train_s"] = time.perf_counter() - started
        # CPU seconds of this one-thread process: what the run costs on a core of its own,
        # whatever else the machine runs (the pilots' measure).
        record["train_cpu_s"] = time.process_time() - cpu
        checkpoints = sorted(
            (out / "checkpoints").glob("step-*"), key=lambda p: int(p.name.split("-")[1])
        )
        evaluated, cpu = time.perf_counter(), time.process_time()
        chosen = checkpoints if job["evaluate_all"] else checkpoints[-1:]
        for checkpoint in chosen if job["evaluate"] else []:
            step = int(checkpoint.name.split("-")[1])
            metrics = evaluate(checkpoint, Path(job["eval_spec"]), budget, job["reference"])
            if not job["reference"]:  # a warm-up: the reference of every run from it
                metrics["eval/kl_ref"] = 0.0
            record["evals"][str(step)] = metrics
        record["eval_s"] = time.perf_counter() - evaluated
        record["eval_cpu_s"] = time.process_time() - cpu
        record["status"] = "succeeded"
        if not job["keep_checkpoints"]:
            for checkpoint in checkpoints:
                shutil.rmtree(checkpoint)
    except Exception as exc:  # one failed run is reported, the study goes on
        record |= {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
    record["wall_s"] = time.perf_counter() - started
    record_path.parent.mkdir(parents=True, exist_ok=True)
    record_path.write_text(json.dumps(record, indent=1, sort_keys=True))
    return record


Map = Callable[[Callable[[dict[str, Any]], dict[str, Any]], list[dict[str, Any]]], Iterable]


def execute_all(jobs: list[dict[str, Any]], mapper: Map, say: Say) -> list[dict[str, Any]]:
    """Every job's record, in job order, through `mapper` (map, or a pool's imap)."""
    return [_said(r, i, len(jobs), say) for i, r in enumerate(mapper(execute, jobs))]


@contextmanager
def workers_map(workers: int) -> Iterator[Map]:
    """`workers` spawned one-thread processes for the whole study (each start imports torch),
    or this process itself for 1."""
    if workers <= 1:
        yield map  # type: ignore[misc]
        return
    with multiprocessing.get_context("spawn").Pool(workers, initializer=threads_one) as pool:
        yield pool.imap  # type: ignore[misc]


def _said(record: dict[str, Any], index: int, total: int, say: Say) -> dict[str, Any]:
    last = final_metrics(record)
    shown = f"FAILED {record.get('error')}" if record["status"] != "succeeded" else "done"
    if last:
        shown = f"reward {last['eval/reward']:.3f}, kl {last['eval/kl_ref']:.3f}"
    say(f"[{index + 1}/{total}] {record['name']}: {shown} ({record['wall_s']:.1f} s)")
    return record


def final_metrics(record: dict[str, Any]) -> dict[str, float]:
    """A run's last evaluation; {} when it has none."""
    evals = record.get("evals") or {}
    return evals[max(evals, key=int)] if evals else {}


def make_job(
    budget: Budget, run: Run, spec: dict, folder: Path, eval_path: Path, keep: bool, **extra: Any
) -> dict[str, Any]:
    """What `execute` needs of a run: its spec, where it writes, how it is evaluated."""
    return {
        "run": dataclasses.asdict(run),
        "budget": budget,
        "spec": spec,
        "out": str(folder / "runs" / run.name),
        "eval_spec": str(eval_path),
        "keep_checkpoints": keep,
        "evaluate_all": run.stage == "reported",
        "evaluate": True,
        "reference": run.stage != "warmup",
        **extra,
    }
