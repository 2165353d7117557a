"""Timed pilots: the seconds `design.estimate_minutes` reads (`gro bench study --pilot`), in
CPU seconds of one-thread runs: what each costs on a core of its own, so the estimate is that
of a machine with a core per worker and nothing else running (a busy one is slower).

Each pilot trains twice, PILOT_STEPS steps, the plan's kind of run at the budget's batch sizes
on one thread: the difference gives seconds per step, the rest of the shorter run the per-run
cost (loading, saving); the longer run's evaluation the seconds per checkpoint evaluation. The
start is a 6-step warm-up, whose completions run to max_new_tokens: an upper bound.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from bench.validation.design import BASELINE, Budget, Run
from bench.validation.study import build_models, warmup_path, write_inputs
from bench.validation.study_run import (
    Say,
    eval_spec,
    execute,
    make_job,
    run_spec,
    threads_one,
    warmup_spec,
)

PILOT_STEPS = (2, 6)


def pilot(budget: Budget, folder: Path, say: Say = print) -> dict[str, dict]:
    """Seconds per step by "size/group", per checkpoint evaluation and per run by size, timed
    on this machine (one thread) at `budget`'s batch sizes."""
    threads_one()
    build_models(budget)
    step_s: dict[str, float] = {}
    eval_s: dict[str, float] = {}
    run_s: dict[str, float] = {}
    for size in budget.sizes:
        warm = Run("warmup", budget.tuning_task, size, "sft", "sft", 0, 20)
        demos = write_inputs(budget, folder / size, [warm])
        # The first run of a process pays one-time costs (imports, first kernels): not timed.
        for steps in (1, *PILOT_STEPS):  # the warm-up's own step time
            timed = dataclasses.replace(warm, steps=steps, seed=steps)
            spec = warmup_spec(budget, timed, demos[f"demos/{warm.task}"])
            execute(make_job(budget, timed, spec, folder / size, folder, True, evaluate=False))
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
                spec = run_spec(budget, run, start)
                execute(make_job(budget, run, spec, folder / size, spec_path, False))
            records = _pilot_records(folder / size, group)
            step_s[f"{size}/{group}"], overhead = _fit(_pilot_walls(folder, size, group))
            eval_s[size] = max(r["eval_cpu_s"] for r in records)
            run_s[size] = max(run_s.get(size, 0.0), overhead)
        say(f"{size}: {step_s} {eval_s} {run_s}")
    return {"step_s": step_s, "eval_s": eval_s, "run_s": run_s}


def _pilot_records(folder: Path, group: str) -> list[dict[str, Any]]:
    records = [json.loads(p.read_text()) for p in (folder / "runs").glob("*/record.json")]
    return [r for r in records if r["group"] == group and r["status"] == "succeeded"]


def _pilot_walls(folder: Path, size: str, group: str) -> dict[int, float]:
    """CPU seconds of training by steps, of the pilots of `group`."""
    records = _pilot_records(folder / size, group)
    return {r["steps"]: r["train_cpu_s"] for r in records if r["steps"] in PILOT_STEPS}


def _fit(walls: dict[int, float]) -> tuple[float, float]:
    """(seconds per step, seconds besides) through the two pilots' (steps, wall) points."""
    (n0, t0), (n1, t1) = sorted(walls.items())
    per_step = max(0.0, (t1 - t0) / (n1 - n0))
    return per_step, max(0.0, t0 - n0 * per_step)
