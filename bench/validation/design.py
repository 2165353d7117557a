"""The validation study v2 (issue 20), as data: three task families, two model sizes, every
preset tuned on its own small grid on tuning seeds, then compared on disjoint reported seeds.

Stages, in order (`plan` lists the runs of each, `estimate_minutes` their wall time):
1. warm-up: per task and size, SFT on a sloppy demonstrator's rows
   (`gro_core.tasks.sloppy_demonstrations`, right 40% of the time): partly right, so rollouts
   find rewarded answers and every method has room to act.
2. tuning: per task, size and method, every point of the method's grid (learning rate, and
   β where the method has one) on the tuning seeds. The rule (`bench.validation.tuning`): the
   point with the highest mean final held-out reward at the tuning budget wins.
3. reported: per task and size, each method at its chosen point on the reported seeds (never
   a tuning seed), gro's ablations and the offline-mix sweep at gro's chosen point; every run
   keeps a checkpoint at each evaluation point, so its (KL to the warm-up, held-out reward)
   curve feeds the matched-KL tables (`gro_core.evaluation.frontier`).

builtin:tiny-llama runs everything; builtin:small-llama (25M) runs the main online
comparison (the online presets, no ablations, no offline group).
"""

from __future__ import annotations

import itertools
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
class Budget:
    name: str
    reported_seeds: tuple[int, ...]
    tuning_seeds: tuple[int, ...]
    warmup_steps: int
    steps: int
    tuning_steps: int
    batch_size: int
    generations: int
    eval_every: int
    eval_prompts: int
    sizes: tuple[str, ...] = ("tiny", "small")
    tasks: tuple[str, ...] = TASK_FAMILIES
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        shared = set(self.reported_seeds) & set(self.tuning_seeds)
        if shared:
            raise ValueError(f"tuning seeds must be disjoint from reported seeds: {sorted(shared)}")
        if self.steps % self.eval_every:
            raise ValueError("steps must be a multiple of eval_every (the frontier's points)")


FULL = Budget(
    "full",
    reported_seeds=(0, 1, 2),
    tuning_seeds=(100,),
    warmup_steps=250,
    steps=100,
    tuning_steps=100,
    batch_size=16,
    generations=8,
    eval_every=20,
    eval_prompts=128,
)
QUICK = Budget(
    "quick",
    reported_seeds=(0, 1),
    tuning_seeds=(100,),
    warmup_steps=30,
    steps=4,
    tuning_steps=2,
    batch_size=4,
    generations=4,
    eval_every=2,
    eval_prompts=8,
    sizes=("tiny",),
)


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


def _variants(size: str) -> dict[str, list[str]]:
    """The reported variants per group: the main online comparison on every size, the rest
    on tiny only."""
    if size != "tiny":
        return {"online": list(ONLINE)}
    online = [*ONLINE, *ABLATIONS, *(f"gro offline_mix={m}" for m in OFFLINE_MIX)]
    return {"online": online, "offline": list(OFFLINE)}


def plan(budget: Budget) -> list[Run]:
    """Every run of the study in stage order (tuning points unresolved: `point` is the grid's)."""
    runs: list[Run] = []
    for task, size in itertools.product(budget.tasks, budget.sizes):
        runs.append(Run("warmup", task, size, "sft", "sft", 0, budget.warmup_steps))
        groups = {"online": ONLINE} if size != "tiny" else {"online": ONLINE, "offline": OFFLINE}
        for group, grids in groups.items():
            for method, grid in grids.items():
                for point, seed in itertools.product(grid.points(), budget.tuning_seeds):
                    runs.append(
                        Run("tuning", task, size, group, method, seed, budget.tuning_steps, point)
                    )
        for group, variants in _variants(size).items():
            for variant, seed in itertools.product(variants, budget.reported_seeds):
                runs.append(Run("reported", task, size, group, variant, seed, budget.steps))
    return runs


def estimate_minutes(
    budget: Budget, step_s: dict[tuple[str, str], float], eval_s: dict[str, float], workers: int
) -> float:
    """Wall minutes of `plan(budget)` on `workers` one-thread workers, from measured seconds
    per training step by (size, group) and per checkpoint evaluation by size.

    Runs are independent within a stage, so a stage takes its total work / workers (rounded up
    to its longest run, the floor when workers outnumber runs); stages run one after another
    (tuning needs the warm-ups, the reported runs the choices), and warm-ups of all tasks
    and sizes run side by side.
    """
    total = 0.0
    for stage in ("warmup", "tuning", "reported"):
        costs = []
        for run in (r for r in plan(budget) if r.stage == stage):
            evals = run.steps // budget.eval_every if stage == "reported" else 1
            costs.append(run.steps * step_s[(run.size, run.group)] + evals * eval_s[run.size])
        if costs:
            total += max(sum(costs) / workers, max(costs))
    return total / 60
