"""The validation study v2 (issue 20), as data: three task families, two model sizes, every
preset tuned on its own small grid on a tuning seed, then compared on disjoint reported seeds.

Stages, in order (`plan` lists the runs of each, `estimate_minutes` their wall time):
1. warm-up: per task and size, SFT on a sloppy demonstrator's rows
   (`gro_core.tasks.sloppy_demonstrations`, right 40% of the time): partly right, so rollouts
   find rewarded answers and every method has room to act.
2. tuning: per size and method, every point of the method's grid (learning rate, and β where
   the method has one) on the tuning seeds, on the tuning task only; the choice is reused for
   every task. The rule (`bench.validation.tuning`): the point with the highest mean final
   held-out reward at the tuning budget wins.
3. reported: per task and size, each method at its chosen point on the reported seeds (never
   a tuning seed), gro's ablations and the offline-mix sweep at gro's chosen point; every run
   keeps a checkpoint at each evaluation point, so its (KL to the warm-up, held-out reward)
   curve feeds the matched-KL tables (`gro_core.evaluation.frontier`).

The budget cut (FULL, so the study fits 90 minutes on 2 cores with 2 workers; the report
states it): builtin:tiny-llama runs every preset, ablation and mix share on all three tasks;
builtin:small-llama (25M) runs gro, grpo and rloo on reverse only, with a shorter warm-up,
shorter runs and an lr-only grid.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

SIZES = {"tiny": "builtin:tiny-llama", "small": "builtin:small-llama"}
TASK_FAMILIES = ("reverse", "arithmetic", "format")
RIGHT_SHARE = 0.4
"""Of the warm-up's demonstrations; the rest are the family's plausible mistake."""
BASELINE = "gro"


@dataclass(frozen=True)
class Grid:
    """A method's tuning grid: learning rates, and values of its β-like argument (`beta_arg`:
    the KL or temperature coefficient its paper tunes; None when it has none)."""

    lrs: tuple[float, ...]
    beta_arg: str | None = None
    betas: tuple[float, ...] = ()

    def points(self) -> list[dict[str, Any]]:
        """Every (lr, method_args) the grid holds, lr varying slowest."""
        betas: tuple[float | None, ...] = self.betas if self.beta_arg else (None,)
        return [
            {"lr": lr, "method_args": {} if b is None else {self.beta_arg: b}}
            for lr, b in itertools.product(self.lrs, betas)
        ]


ONLINE_LRS = (1e-4, 3e-4, 1e-3)
OFFLINE_LRS = (3e-5, 1e-4, 3e-4)
ONLINE: dict[str, Grid] = {
    "gro": Grid(ONLINE_LRS, "beta", (0.5, 1.0)),
    "grpo": Grid(ONLINE_LRS, "kl_coef", (0.0, 0.04)),
    "dapo": Grid(ONLINE_LRS),
    "dr_grpo": Grid(ONLINE_LRS),
    "rloo": Grid(ONLINE_LRS, "kl_coef", (0.0, 0.05)),
    "remax": Grid(ONLINE_LRS),
    "reinforce_pp": Grid(ONLINE_LRS, "kl_coef", (0.0, 0.01)),
    "awr": Grid(ONLINE_LRS, "tau", (0.5, 1.0)),
}
OFFLINE: dict[str, Grid] = {
    "gro": Grid(OFFLINE_LRS, "beta", (0.5, 1.0)),
    "dpo": Grid(OFFLINE_LRS, "beta", (0.1, 0.3)),
    "ipo": Grid(OFFLINE_LRS, "beta", (0.1, 0.3)),
    "simpo": Grid(OFFLINE_LRS, "beta", (0.1, 0.3)),
    "kto": Grid(OFFLINE_LRS, "beta", (0.1, 0.3)),
    "cpl": Grid(OFFLINE_LRS, "alpha", (0.1, 0.3)),
}
ABLATIONS: dict[str, dict[str, Any]] = {
    "gro anchor=none": {"anchor": "none"},
    "gro anchor=group_mean": {"anchor": "group_mean"},
    "gro weight=one": {"weight": "one"},
    "gro f=exp": {"f": "exp"},
    "gro beta=2": {"beta": 2.0},
}
"""gro's parts, one at a time, at gro's chosen lr (method_args merged over its chosen ones)."""
OFFLINE_MIX = (0.25, 0.5)
"""Shares of each batch's prompts replaced by SFT rows; 0 is gro itself."""


@dataclass(frozen=True)
class SizeBudget:
    """What one model size runs: its steps and which methods (grids) it tunes and reports."""

    warmup_steps: int
    steps: int
    """Of a reported run; a multiple of the budget's eval_every."""
    online: dict[str, Grid]
    offline: dict[str, Grid] = field(default_factory=dict)
    ablations: dict[str, dict[str, Any]] = field(default_factory=dict)
    offline_mix: tuple[float, ...] = ()
    tasks: tuple[str, ...] = TASK_FAMILIES


@dataclass(frozen=True)
class Budget:
    """One study's scale. The grids are tuned on `tuning_task` only and the choices reused for
    every task (tuning is the costliest stage: a grid per method and size)."""

    name: str
    reported_seeds: tuple[int, ...]
    tuning_seeds: tuple[int, ...]
    tuning_steps: int
    batch_size: int
    """Prompts per online step, pairs per offline step."""
    generations: int
    eval_every: int
    eval_prompts: int
    sizes: dict[str, SizeBudget]
    tuning_task: str = "reverse"
    warmup_batch: int = 32
    mix_rows: int = 2048
    """SFT rows the offline-mix variants draw from."""

    def __post_init__(self) -> None:
        shared = set(self.reported_seeds) & set(self.tuning_seeds)
        if shared:
            raise ValueError(f"tuning seeds must be disjoint from reported seeds: {sorted(shared)}")
        for name, size in self.sizes.items():
            if size.steps % self.eval_every:
                raise ValueError(f"{name}: steps must be a multiple of eval_every (the curve's)")
            if self.tuning_task not in size.tasks:
                raise ValueError(f"{name}: its tasks lack the tuning task {self.tuning_task}")

    def as_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))


SMALL_LRS = (3e-4, 1e-3)
FULL = Budget(
    "full",
    reported_seeds=(0, 1, 2),
    tuning_seeds=(100,),
    tuning_steps=40,
    batch_size=16,
    generations=8,
    eval_every=20,
    eval_prompts=64,
    sizes={
        "tiny": SizeBudget(
            warmup_steps=250,
            steps=60,
            online=ONLINE,
            offline=OFFLINE,
            ablations=ABLATIONS,
            offline_mix=OFFLINE_MIX,
        ),
        # The main online comparison, cut to what 90 minutes on 2 cores hold: three methods,
        # one task, lr tuned only (β at the preset's default).
        "small": SizeBudget(
            warmup_steps=100,
            steps=20,
            online={m: Grid(SMALL_LRS) for m in ("gro", "grpo", "rloo")},
            tasks=("reverse",),
        ),
    },
)
QUICK = Budget(
    "quick",
    reported_seeds=(0, 1),
    tuning_seeds=(100,),
    tuning_steps=2,
    batch_size=4,
    generations=4,
    eval_every=2,
    eval_prompts=8,
    mix_rows=64,
    sizes={
        "tiny": SizeBudget(
            warmup_steps=20,
            steps=2,
            online={"gro": Grid((1e-3, 3e-3)), "grpo": Grid((1e-3,))},
            offline={"gro": Grid((1e-3,)), "dpo": Grid((1e-3,))},
            offline_mix=(0.25,),
            tasks=("reverse",),
        )
    },
)

# CPU seconds of one-thread runs, timed by `gro bench study --pilot` (bench.validation.pilot)
# on the 2-core CI machine, twice; the larger of the two (they differed by up to 12%, small
# online steps most: completion lengths vary). A core per worker and nothing else running:
# on a busy machine the study takes longer (a 5-run check at load 5 on 2 cores took 1.7x).
# From a 6-step warm-up, whose completions run to max_new_tokens: an upper bound per step.
PILOT_STEP_S = {
    ("tiny", "sft"): 0.069,
    ("tiny", "online"): 0.248,
    ("tiny", "offline"): 0.059,
    ("small", "sft"): 2.37,
    ("small", "online"): 4.46,
}
"""Seconds per training step, by (size, group)."""
PILOT_EVAL_S = {"tiny": 1.11, "small": 20.9}
"""Seconds per checkpoint evaluation (eval_prompts prompts, G samples, KL to the warm-up)."""
PILOT_RUN_S = {"tiny": 0.89, "small": 8.73}
"""Seconds a run costs besides its steps and evaluations: loading, saving checkpoints."""
MAX_MINUTES = 90
"""The issue's budget for FULL on 2 cores with 2 workers."""


@dataclass(frozen=True)
class Run:
    """One training run of the plan."""

    stage: str  # warmup, tuning or reported
    task: str
    size: str
    group: str  # online or offline ("sft" for warm-ups)
    variant: str
    seed: int
    steps: int
    point: dict[str, Any] = field(default_factory=dict)
    """Tuning runs: the grid's point; reported runs: filled in once tuning chose."""

    @property
    def name(self) -> str:
        """A unique, filesystem-safe id of the run within its study."""
        label = self.variant.replace(" ", "_").replace("=", "-")
        tail = f"-{key_text(self.point)}" if self.stage == "tuning" else ""
        return f"{self.stage}-{self.task}-{self.size}-{self.group}-{label}-s{self.seed}{tail}"


def key_text(point: dict[str, Any]) -> str:
    args = "-".join(f"{k}{v}" for k, v in sorted(point.get("method_args", {}).items()))
    return f"lr{point.get('lr')}" + (f"-{args}" if args else "")


def variants(size: SizeBudget) -> dict[str, list[str]]:
    """The reported variants per group: the presets, then gro's ablations and mix sweep."""
    online = [*size.online, *size.ablations, *(f"gro offline_mix={m}" for m in size.offline_mix)]
    return {"online": online, "offline": list(size.offline)} if size.offline else {"online": online}


def plan(budget: Budget) -> list[Run]:
    """Every run of the study in stage order (reported runs' points unresolved)."""
    runs: list[Run] = []
    for size_name, size in budget.sizes.items():
        for task in size.tasks:
            runs.append(Run("warmup", task, size_name, "sft", "sft", 0, size.warmup_steps))
    for size_name, size in budget.sizes.items():
        groups = {"online": size.online, "offline": size.offline}
        for group, grids in groups.items():
            for method, grid in grids.items():
                for point, seed in itertools.product(grid.points(), budget.tuning_seeds):
                    runs.append(
                        Run("tuning", budget.tuning_task, size_name, group, method, seed,
                            budget.tuning_steps, point)
                    )  # fmt: skip
    for size_name, size in budget.sizes.items():
        for task in size.tasks:
            for group, names in variants(size).items():
                for variant, seed in itertools.product(names, budget.reported_seeds):
                    runs.append(Run("reported", task, size_name, group, variant, seed, size.steps))
    return runs


def evaluations(budget: Budget, run: Run) -> int:
    """Checkpoint evaluations a run costs: every eval point of a reported run (step 0 is the
    warm-up's, evaluated once), the end of a tuning run, the warm-up itself."""
    return run.steps // budget.eval_every if run.stage == "reported" else 1


def estimate_minutes(
    budget: Budget,
    step_s: dict[tuple[str, str], float],
    eval_s: dict[str, float],
    workers: int,
    run_s: dict[str, float] | None = None,
) -> float:
    """Wall minutes of `plan(budget)` on `workers` one-thread workers, from measured seconds
    per training step by (size, group), per checkpoint evaluation by size and per run
    (`run_s`: loading and saving, by size; 0 when not given).

    Runs are independent within a stage, so a stage takes its total work / workers (rounded up
    to its longest run, the floor when workers outnumber runs); stages run one after another
    (tuning needs the warm-ups, the reported runs the choices).
    """
    run_s = run_s or {}
    total = 0.0
    for stage in ("warmup", "tuning", "reported"):
        costs = [
            run.steps * step_s[(run.size, run.group)]
            + evaluations(budget, run) * eval_s[run.size]
            + run_s.get(run.size, 0.0)
            for run in plan(budget)
            if run.stage == stage
        ]
        if costs:
            total += max(sum(costs) / workers, max(costs))
    return total / 60


def pilot_estimate(budget: Budget, workers: int) -> float:
    """`estimate_minutes` from the timed pilots above."""
    return estimate_minutes(budget, PILOT_STEP_S, PILOT_EVAL_S, workers, PILOT_RUN_S)
