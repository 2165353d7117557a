"""Run the validation study v2 (bench.validation.design) in-process, through gro_core's own
trainer (`gro_core.trainers.run`, what `gro train` calls) and evaluation
(`gro_core.evaluation.runs.evaluate_run`, what `gro eval` calls): no service needed.

    results = run_study(FULL, Path("work"), workers=2)   # -> docs/validation_v2/results.json

Every run saves a checkpoint at each evaluation point; each checkpoint is evaluated alike (the
task's held-out prompts, G samples at temperature 1, evaluation seed 0, KL to the warm-up the
run started from) and deleted afterwards unless `keep_checkpoints`. Step 0 of every curve is
the warm-up's own evaluation (KL 0), made once per task and size.

`workers` > 1 runs the runs of a stage in that many spawned processes of one torch thread each,
so a run's numbers do not depend on which worker ran it, nor on how many there are. A run
whose record is already in the work directory is not run again (an interrupted study resumes).
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

from bench.validation.design import (
    BASELINE,
    RIGHT_SHARE,
    SIZES,
    Budget,
    Run,
    pilot_estimate,
    plan,
)
from bench.validation.tuning import Choice, choose

EVAL_SEED = 0
MAX_NEW_TOKENS = 8
MIX_PREFIX = "gro offline_mix="
Say = Callable[[str], None]


def _threads_one() -> None:
    """Each worker (and the main process) trains on one thread: reproducible, and N workers
    fit N cores."""
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


# --- specs ---------------------------------------------------------------------------------


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


# --- one run, in a worker --------------------------------------------------------------------


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _evaluate(checkpoint: Path, spec_path: Path, budget: Budget, reference: bool) -> dict:
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
    _threads_one()
    from gro_core.cli.quiet import quiet_libraries
    from gro_core.spec import load_spec
    from gro_core.trainers import run as train

    quiet_libraries()
    run, budget = Run(**job["run"]), job["budget"]
    out = Path(job["out"])
    record_path = out / "record.json"
    if record_path.is_file():
        return json.loads(record_path.read_text())
    record: dict[str, Any] = {**dataclasses.asdict(run), "name": run.name, "evals": {}}
    started = time.perf_counter()
    try:
        if out.exists():
            shutil.rmtree(out)  # a run interrupted before its record: start it over
        train(load_spec(job["spec"]), out, [])
        record["train_s"] = time.perf_counter() - started
        checkpoints = sorted(
            (out / "checkpoints").glob("step-*"), key=lambda p: int(p.name.split("-")[1])
        )
        evaluated = time.perf_counter()
        chosen = checkpoints if job["evaluate_all"] else checkpoints[-1:]
        for checkpoint in chosen if job["evaluate"] else []:
            step = int(checkpoint.name.split("-")[1])
            metrics = _evaluate(checkpoint, Path(job["eval_spec"]), budget, job["reference"])
            if not job["reference"]:  # a warm-up: the reference of every run from it
                metrics["eval/kl_ref"] = 0.0
            record["evals"][str(step)] = metrics
        record["eval_s"] = time.perf_counter() - evaluated
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
    with multiprocessing.get_context("spawn").Pool(workers, initializer=_threads_one) as pool:
        yield pool.imap  # type: ignore[misc]


def _said(record: dict[str, Any], index: int, total: int, say: Say) -> dict[str, Any]:
    last = _final(record)
    shown = f"FAILED {record.get('error')}" if record["status"] != "succeeded" else "done"
    if last:
        shown = f"reward {last['eval/reward']:.3f}, kl {last['eval/kl_ref']:.3f}"
    say(f"[{index + 1}/{total}] {record['name']}: {shown} ({record['wall_s']:.1f} s)")
    return record


# --- the stages ------------------------------------------------------------------------------


def _job(
    budget: Budget, run: Run, spec: dict, folder: Path, eval_path: Path, keep: bool, **extra: Any
) -> dict[str, Any]:
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


def warmup_path(folder: Path, run: Run) -> Path:
    return folder / "runs" / run.name / "checkpoints" / f"step-{run.steps}"


def _inputs(budget: Budget, folder: Path, runs: list[Run]) -> dict[str, Path]:
    """Per task the warm-up demonstrations and the offline-mix SFT rows, as JSONL files."""
    from gro_core.tasks import generate, sloppy_demonstrations

    paths: dict[str, Path] = {}
    for task in sorted({r.task for r in runs}):
        steps = max(r.steps for r in runs if r.task == task and r.stage == "warmup")
        rows = sloppy_demonstrations(
            task, steps * budget.warmup_batch, seed=0, right_share=RIGHT_SHARE
        )
        paths[f"demos/{task}"] = _write_rows(
            folder / "inputs" / f"{task}-demonstrations.jsonl",
            [{"prompt": r["prompt"], "completion": r["completion"]} for r in rows],
        )
        mix = generate(f"{task}-sft", budget.mix_rows, seed=1234, split="train")
        paths[f"mix/{task}"] = _write_rows(folder / "inputs" / f"{task}-mix.jsonl", mix)
    return paths


def _eval_paths(budget: Budget, folder: Path, warmups: list[Run]) -> dict[tuple[str, str], Path]:
    paths = {}
    for run in warmups:
        path = folder / "inputs" / f"eval-{run.task}-{run.size}.json"
        path.write_text(json.dumps(eval_spec(budget, run.task, warmup_path(folder, run))))
        paths[(run.task, run.size)] = path
    return paths


def choices_for(budget: Budget, tuning: list[dict[str, Any]]) -> dict[str, Choice]:
    """Per `size/group/method` the tuning rule's choice from its tuning runs."""
    out = {}
    for size_name, size in budget.sizes.items():
        for group, grids in {"online": size.online, "offline": size.offline}.items():
            for method, grid in grids.items():
                mine = [
                    {**r, "final": _final(r)}
                    for r in tuning
                    if (r["size"], r["group"], r["variant"]) == (size_name, group, method)
                ]
                out[f"{size_name}/{group}/{method}"] = choose(method, grid.points(), mine)
    return out


def _final(record: dict[str, Any]) -> dict[str, float]:
    evals = record.get("evals") or {}
    return evals[max(evals, key=int)] if evals else {}


def reported_point(budget: Budget, run: Run, choices: dict[str, Choice]) -> dict | None:
    """A reported run's point: its method's choice; ablations and mixes take gro's online."""
    method = run.variant if run.variant in _methods(budget, run) else BASELINE
    choice = choices[f"{run.size}/{run.group}/{method}"]
    return choice.point


def _methods(budget: Budget, run: Run) -> dict[str, Any]:
    size = budget.sizes[run.size]
    return size.online if run.group == "online" else size.offline


def run_study(
    budget: Budget, folder: Path, workers: int = 1, keep: bool = False, say: Say = print
) -> dict[str, Any]:
    """Every stage of `plan(budget)` in order; the results document the report reads."""
    with workers_map(workers) as mapper:
        results = _stages(budget, folder, mapper, keep, say)
    return results | {"workers": workers, "estimate_minutes": pilot_estimate(budget, workers)}


def _stages(budget: Budget, folder: Path, mapper: Map, keep: bool, say: Say) -> dict[str, Any]:
    _threads_one()
    _build_models(budget)
    started = time.time()
    folder.mkdir(parents=True, exist_ok=True)
    runs = plan(budget)
    inputs = _inputs(budget, folder, runs)
    warmups = [r for r in runs if r.stage == "warmup"]
    say(f"{len(runs)} runs; stage 1: {len(warmups)} warm-ups")
    stage_s: dict[str, float] = {}
    clock = time.time()
    warm_of = {(r.task, r.size): warmup_path(folder, r) for r in warmups}
    eval_paths = _eval_paths(budget, folder, warmups)
    # Each warm-up's evaluation is step 0 of every curve from it (KL 0: it is the reference).
    warm = execute_all(
        [
            _job(budget, r, warmup_spec(budget, r, inputs[f"demos/{r.task}"]), folder,
                 eval_paths[(r.task, r.size)], True)
            for r in warmups
        ],
        mapper,
        say,
    )  # fmt: skip
    stage_s["warmup"] = time.time() - clock

    clock = time.time()
    tuning_runs = [r for r in runs if r.stage == "tuning"]
    say(f"stage 2: {len(tuning_runs)} tuning runs")
    tuning = execute_all(
        [
            _job(budget, r, run_spec(budget, r, warm_of[(r.task, r.size)]), folder,
                 eval_paths[(r.task, r.size)], keep)
            for r in tuning_runs
        ],
        mapper,
        say,
    )  # fmt: skip
    choices = choices_for(budget, tuning)
    stage_s["tuning"] = time.time() - clock

    clock = time.time()
    reported, skipped = [], []
    for r in (r for r in runs if r.stage == "reported"):
        point = reported_point(budget, r, choices)
        if point is None:
            skipped.append(r.name)
        else:
            reported.append(dataclasses.replace(r, point=point))
    say(f"stage 3: {len(reported)} reported runs ({len(skipped)} without a tuned point)")
    jobs = [
        _job(
            budget,
            r,
            run_spec(budget, r, warm_of[(r.task, r.size)], inputs[f"mix/{r.task}"]),
            folder,
            eval_paths[(r.task, r.size)],
            keep,
        )
        for r in reported
    ]
    records = execute_all(jobs, mapper, say)
    stage_s["reported"] = time.time() - clock
    step0 = {(w["task"], w["size"]): _final(w) for w in warm}
    for record in records:
        if record["status"] == "succeeded" and step0.get((record["task"], record["size"])):
            record["evals"]["0"] = step0[(record["task"], record["size"])]
    return {
        "budget": budget.as_dict(),
        "warmups": warm,
        "tuning": {"runs": tuning, "choices": {k: c.model_dump() for k, c in choices.items()}},
        "runs": records,
        "skipped": skipped,
        "stage_s": stage_s,
        "wall_s": time.time() - started,
    }


def _build_models(budget: Budget) -> None:
    """Build the builtin models once here, before workers race to build them."""
    from gro_core.models.builtin import resolve_model

    for size in budget.sizes:
        resolve_model(SIZES[size])


# --- pilots: what estimate_minutes reads -------------------------------------------------------

PILOT_STEPS = (2, 6)
"""Each pilot trains twice, this many steps: the difference gives seconds per step, the rest
of the shorter run the per-run cost."""


def pilot(budget: Budget, folder: Path, say: Say = print) -> dict[str, dict]:
    """Seconds per step by (size, group), per checkpoint evaluation and per run by size, timed
    on this machine (one thread) at `budget`'s batch sizes, from short runs of the plan's kinds."""
    _threads_one()
    _build_models(budget)
    step_s: dict[str, float] = {}
    eval_s: dict[str, float] = {}
    run_s: dict[str, float] = {}
    for size in budget.sizes:
        warm = Run("warmup", budget.tuning_task, size, "sft", "sft", 0, 20)
        demos = _inputs(budget, folder / size, [warm])
        for steps in PILOT_STEPS:  # the warm-up's own step time
            timed = dataclasses.replace(warm, steps=steps, seed=steps)
            execute(_job(budget, timed, warmup_spec(budget, timed, demos[f"demos/{warm.task}"]),
                         folder / size, folder / "none", True, evaluate=False))  # fmt: skip
        start = warmup_path(folder / size, dataclasses.replace(warm, steps=6, seed=6))
        walls = _pilot_walls(folder, size, "sft")
        step_s[f"{size}/sft"], _ = _fit(walls)
        spec_path = folder / size / "eval.json"
        spec_path.write_text(json.dumps(eval_spec(budget, warm.task, start)))
        groups = ["online", "offline"] if budget.sizes[size].offline else ["online"]
        for group in groups:
            for steps in PILOT_STEPS:
                run = Run("tuning", warm.task, size, group, BASELINE, steps, steps,
                          {"lr": 1e-4, "method_args": {}})  # fmt: skip
                execute(_job(budget, run, run_spec(budget, run, start), folder / size,
                             spec_path, False))  # fmt: skip
            records = _pilot_records(folder / size, group)
            step_s[f"{size}/{group}"], overhead = _fit({r["steps"]: r["train_s"] for r in records})
            eval_s[size] = max(r["eval_s"] for r in records)
            run_s[size] = max(run_s.get(size, 0.0), overhead)
        say(f"{size}: {step_s} {eval_s} {run_s}")
    return {"step_s": step_s, "eval_s": eval_s, "run_s": run_s}


def _pilot_records(folder: Path, group: str) -> list[dict[str, Any]]:
    records = [json.loads(p.read_text()) for p in (folder / "runs").glob("*/record.json")]
    return [r for r in records if r["group"] == group and r["status"] == "succeeded"]


def _pilot_walls(folder: Path, size: str, group: str) -> dict[int, float]:
    return {r["steps"]: r["train_s"] for r in _pilot_records(folder / size, group)}


def _fit(walls: dict[int, float]) -> tuple[float, float]:
    """(seconds per step, seconds besides) through the two pilots' (steps, wall) points."""
    (n0, t0), (n1, t1) = sorted(walls.items())
    per_step = max(0.0, (t1 - t0) / (n1 - n0))
    return per_step, max(0.0, t0 - n0 * per_step)
