"""The experiments, as data: one SFT warm-up, then two comparisons on equal budgets.

- online: word reversal prompts scored by exact match, from the warm-up: gro, grpo, rloo,
  remax, reinforce_pp, awr; GRO's ablations (anchor none / group_mean, weight one, f exp; the
  defaults opposite / sigmoid / identity are gro itself); and gro with offline SFT rows mixed
  into each batch. gro is the first variant: paired differences are against it.
- offline: reversal preference pairs from the same warm-up: gro, dpo, kto, cpl.
Within a comparison every run sees the same prompts (the task's draw depends on the seed only),
the same number of samples and steps, the same model and seeds.

Reversal, not arithmetic: this 0.44M-parameter model learns reversal from a short warm-up and
keeps improving from rollouts, while it learns the units table of 2-digit arithmetic too slowly
for any method to move held-out accuracy within this budget (see gro_core's online tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TASK = "builtin:reverse"
PREFERENCE_TASK = "builtin:reverse-preference"
SFT_TASK = "builtin:reverse-sft"
MODEL = "builtin:tiny-llama"
WARMUP_BATCH = 32
REVERSED_SHARE = 0.4
"""Of the warm-up's demonstrations; the rest copy the word (tasks.reverse_copy_demonstrations)."""


@dataclass(frozen=True)
class Budget:
    name: str
    seeds: tuple[int, ...]
    warmup_steps: int
    steps: int
    batch_size: int
    """Prompts per online step; pairs per offline step."""
    generations: int
    eval_every: int
    eval_prompts: int
    offline_mix: float = 0.25
    mix_rows: int = 2048
    """SFT rows uploaded for the mixed variant to draw from."""

    def as_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}


FULL = Budget(
    "full",
    (0, 1, 2, 3, 4),
    warmup_steps=250,
    steps=100,
    batch_size=16,
    generations=8,
    eval_every=20,
    eval_prompts=128,
)
QUICK = Budget(
    "quick",
    (0, 1),
    warmup_steps=30,
    steps=3,
    batch_size=4,
    generations=4,
    eval_every=3,
    eval_prompts=8,
    mix_rows=64,
)

ONLINE_METHODS = ("gro", "grpo", "rloo", "remax", "reinforce_pp", "awr")
ABLATIONS = {
    "gro anchor=none": {"anchor": "none"},
    "gro anchor=group_mean": {"anchor": "group_mean"},
    "gro weight=one": {"weight": "one"},
    "gro f=exp": {"f": "exp"},
}
MIXED_LABEL = "gro + offline mix"
OFFLINE_METHODS = ("gro", "dpo", "kto", "cpl")


def warmup_spec(budget: Budget, demonstrations: str) -> dict[str, Any]:
    """SFT on a sloppy demonstrator's rows (the dataset `demonstrations`): a partly right start,
    as in gro_core's online acceptance test. From clean demonstrations the model either reverses
    nearly every held-out word already or none, and the comparison has nothing to show."""
    return {
        "name": f"validation-{budget.name}/sft-warmup",
        "model": MODEL,
        "method": "sft",
        # The task gives the held-out prompts and the accuracy the warm-up reports.
        "data": {"train": demonstrations, "task": SFT_TASK},
        "train": {
            "steps": budget.warmup_steps,
            "batch_size": WARMUP_BATCH,
            "lr": 1e-3,
            "warmup_steps": min(20, budget.warmup_steps // 2),
            "seed": 0,
        },
        "eval": {"every": budget.warmup_steps, "num_prompts": budget.eval_prompts},
        "checkpoint": {"every": budget.warmup_steps, "keep": 1},
    }


def _common(budget: Budget, warmup: str) -> dict[str, Any]:
    return {
        "model": warmup,
        "train": {
            "steps": budget.steps,
            "batch_size": budget.batch_size,
            "lr": 3e-4,
            "warmup_steps": min(10, budget.steps // 2),
        },
        "eval": {"every": budget.eval_every, "num_prompts": budget.eval_prompts},
        # Only the final checkpoint: the evaluation jobs read it.
        "checkpoint": {"every": 0, "keep": 1},
    }


def _comparison(
    budget: Budget, group: str, base: dict[str, Any], variants: list[dict[str, Any]]
) -> dict[str, Any]:
    """A POST /comparisons body: every variant over the budget's seeds."""
    return {
        "name": f"validation-{budget.name}/{group}",
        "base": base,
        "variants": variants,
        "seeds": list(budget.seeds),
    }


def online_comparison(budget: Budget, warmup: str, mix_dataset: str) -> dict[str, Any]:
    base = {
        **_common(budget, warmup),
        "method": "gro",
        "data": {"task": TASK},
        "rollout": {"num_generations": budget.generations, "max_new_tokens": 8, "temperature": 1.0},
    }
    variants = [{"label": m, "overrides": {"method": m}} for m in ONLINE_METHODS]
    variants += [
        {"label": label, "overrides": {"method_args": args}} for label, args in ABLATIONS.items()
    ]
    variants.append(
        {
            "label": MIXED_LABEL,
            "overrides": {"data": {"train": mix_dataset, "offline_mix": budget.offline_mix}},
        }
    )
    return _comparison(budget, "online", base, variants)


def offline_comparison(budget: Budget, warmup: str) -> dict[str, Any]:
    base = {**_common(budget, warmup), "method": "gro", "data": {"task": PREFERENCE_TASK}}
    base["train"] = {**base["train"], "lr": 1e-4}
    variants = [{"label": m, "overrides": {"method": m}} for m in OFFLINE_METHODS]
    return _comparison(budget, "offline", base, variants)


def evaluation_request(budget: Budget, model: str) -> dict[str, Any]:
    """The same held-out prompts and sampling for every run's final checkpoint."""
    return {
        "model": model,
        "dataset": TASK,
        "num_prompts": budget.eval_prompts,
        "num_generations": budget.generations,
        "max_new_tokens": 8,
        "temperature": 1.0,
        "seed": 0,
    }
