"""Run the validation study v2 (bench.validation.design) in-process: no service needed.

    results = run_study(FULL, Path(".gro/study"), workers=2)   # what `gro bench study` runs

Stages, one after another (each needs the one before): the warm-ups, whose evaluations are
step 0 of every curve from them (KL 0: each is its runs' reference); the tuning runs, from
which the tuning rule chooses each method's point; the reported runs at the chosen points.
One run, its training and the evaluation of its checkpoints: bench.validation.study_run.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
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
from bench.validation.study_run import (
    Map,
    Say,
    eval_spec,
    execute_all,
    final_metrics,
    make_job,
    run_spec,
    threads_one,
    warmup_spec,
    workers_map,
    write_rows,
)
from bench.validation.tuning import Choice, choose


def warmup_path(folder: Path, run: Run) -> Path:
    return folder / "runs" / run.name / "checkpoints" / f"step-{run.steps}"


def write_inputs(budget: Budget, folder: Path, runs: list[Run]) -> dict[str, Path]:
    """Per task the warm-up demonstrations and the offline-mix SFT rows, as JSONL files."""
    from gro_core.tasks import generate, sloppy_demonstrations

    paths: dict[str, Path] = {}
    for task in sorted({r.task for r in runs}):
        steps = max(r.steps for r in runs if r.task == task and r.stage == "warmup")
        rows = sloppy_demonstrations(
            task, steps * budget.warmup_batch, seed=0, right_share=RIGHT_SHARE
        )
        paths[f"demos/{task}"] = write_rows(
            folder / "inputs" / f"{task}-demonstrations.jsonl",
            [{"prompt": r["prompt"], "completion": r["completion"]} for r in rows],
        )
        mix = generate(f"{task}-sft", budget.mix_rows, seed=1234, split="train")
        paths[f"mix/{task}"] = write_rows(folder / "inputs" / f"{task}-mix.jsonl", mix)
    return paths


def choices_for(budget: Budget, tuning: list[dict[str, Any]]) -> dict[str, Choice]:
    """Per `size/group/method` the tuning rule's choice from its tuning runs."""
    out = {}
    for size_name, size in budget.sizes.items():
        for group, grids in {"online": size.online, "offline": size.offline}.items():
            for method, grid in grids.items():
                mine = [
                    {**r, "final": final_metrics(r)}
                    for r in tuning
                    if (r["size"], r["group"], r["variant"]) == (size_name, group, method)
                ]
                out[f"{size_name}/{group}/{method}"] = choose(method, grid.points(), mine)
    return out


def reported_point(budget: Budget, run: Run, choices: dict[str, Choice]) -> dict | None:
    """A reported run's point: its method's choice; ablations and mixes take gro's online."""
    size = budget.sizes[run.size]
    methods = size.online if run.group == "online" else size.offline
    method = run.variant if run.variant in methods else BASELINE
    return choices[f"{run.size}/{run.group}/{method}"].point


@dataclass
class Study:
    """What every stage shares: the budget, the work folder and the workers."""

    budget: Budget
    folder: Path
    mapper: Map
    keep: bool
    say: Say
    inputs: dict[str, Path]
    eval_paths: dict[tuple[str, str], Path]
    """Per (task, size) the evaluation spec of its checkpoints."""

    def run_all(self, runs: list[Run], mix: bool = False) -> list[dict[str, Any]]:
        jobs = []
        for r in runs:
            warm = warmup_path(self.folder, _warmup_of(self.budget, r))
            mix_rows = self.inputs[f"mix/{r.task}"] if mix else None
            spec = run_spec(self.budget, r, warm, mix_rows)
            jobs.append(make_job(self.budget, r, spec, self.folder,
                                 self.eval_paths[(r.task, r.size)], self.keep))  # fmt: skip
        return execute_all(jobs, self.mapper, self.say)


def _warmup_of(budget: Budget, run: Run) -> Run:
    steps = budget.sizes[run.size].warmup_steps
    return Run("warmup", run.task, run.size, "sft", "sft", 0, steps)


def _eval_paths(budget: Budget, folder: Path, warmups: list[Run]) -> dict[tuple[str, str], Path]:
    paths = {}
    for run in warmups:
        path = folder / "inputs" / f"eval-{run.task}-{run.size}.json"
        path.write_text(json.dumps(eval_spec(budget, run.task, warmup_path(folder, run))))
        paths[(run.task, run.size)] = path
    return paths


def run_study(
    budget: Budget, folder: Path, workers: int = 1, keep: bool = False, say: Say = print
) -> dict[str, Any]:
    """Every stage of `plan(budget)` in order; the results document the report reads."""
    threads_one()
    build_models(budget)
    folder.mkdir(parents=True, exist_ok=True)
    runs = plan(budget)
    warmups = [r for r in runs if r.stage == "warmup"]
    with workers_map(workers) as mapper:
        inputs = write_inputs(budget, folder, runs)
        study = Study(budget, folder, mapper, keep, say, inputs,
                      _eval_paths(budget, folder, warmups))  # fmt: skip
        results = _stages(study, runs)
    return results | {"workers": workers, "estimate_minutes": pilot_estimate(budget, workers)}


def _stages(study: Study, runs: list[Run]) -> dict[str, Any]:
    budget, say, started = study.budget, study.say, time.time()
    stage_s: dict[str, float] = {}
    warmups = [r for r in runs if r.stage == "warmup"]
    say(f"{len(runs)} runs; stage 1: {len(warmups)} warm-ups")
    warm = execute_all(
        [
            make_job(budget, r, warmup_spec(budget, r, study.inputs[f"demos/{r.task}"]),
                     study.folder, study.eval_paths[(r.task, r.size)], True)
            for r in warmups
        ],
        study.mapper,
        say,
    )  # fmt: skip
    stage_s["warmup"] = time.time() - started

    clock = time.time()
    tuning_runs = [r for r in runs if r.stage == "tuning"]
    say(f"stage 2: {len(tuning_runs)} tuning runs")
    tuning = study.run_all(tuning_runs)
    choices = choices_for(budget, tuning)
    stage_s["tuning"] = time.time() - clock

    clock = time.time()
    reported, skipped = _resolve(budget, [r for r in runs if r.stage == "reported"], choices)
    say(f"stage 3: {len(reported)} reported runs ({len(skipped)} without a tuned point)")
    records = _with_step0(study.run_all(reported, mix=True), warm)
    stage_s["reported"] = time.time() - clock
    return {
        "budget": budget.as_dict(),
        "warmups": warm,
        "tuning": {"runs": tuning, "choices": {k: c.model_dump() for k, c in choices.items()}},
        "runs": records,
        "skipped": skipped,
        "stage_s": stage_s,
        "wall_s": time.time() - started,
    }


def _resolve(
    budget: Budget, runs: list[Run], choices: dict[str, Choice]
) -> tuple[list[Run], list[str]]:
    """(the runs with their chosen points, the names of those whose method has no choice)."""
    resolved, skipped = [], []
    for run in runs:
        point = reported_point(budget, run, choices)
        if point is None:
            skipped.append(run.name)
        else:
            resolved.append(dataclasses.replace(run, point=point))
    return resolved, skipped


def _with_step0(records: list[dict[str, Any]], warm: list[dict[str, Any]]) -> list[dict]:
    """Each run's curve starts at its warm-up's evaluation (KL 0, the warm-up's reward)."""
    step0 = {(w["task"], w["size"]): final_metrics(w) for w in warm}
    for record in records:
        start = step0.get((record["task"], record["size"]))
        if record["status"] == "succeeded" and start:
            record["evals"]["0"] = start
    return records


def build_models(budget: Budget) -> None:
    """Build the builtin models once here, before workers race to build them."""
    from gro_core.models.builtin import resolve_model

    for size in budget.sizes:
        resolve_model(SIZES[size])
