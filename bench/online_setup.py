"""What both sides of bench/online.py share: the settings, the SFT warm-up they start from, the
prompts, the reward, the held-out score, and the timer of wrapped calls."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

PROMPTS, G, TEMPERATURE, EPSILON, KL_COEF, SEED = 8, 8, 1.0, 0.2, 0.04, 0
# --new-tokens sets it for the parent and, through the environment, for every worker.
MAX_NEW_TOKENS = int(os.environ.get("GRO_BENCH_NEW_TOKENS", "32"))
TASK = "reverse"
EVAL_PROMPTS = 256
MODELS = ("tiny-llama", "small-llama")
WORKER_ENV = {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "TQDM_DISABLE": "1"}
REWARDS = [{"type": "exact_match", "field": "answer"}]

Result = dict[str, Any]


@dataclass(frozen=True)
class Setting:
    """What one model trains with: its online run and the SFT warm-up before it."""

    steps: int  # online steps measured
    lr: float
    warmup_steps: int
    sft_steps: int
    sft_lr: float


SETTINGS = {
    "tiny-llama": Setting(steps=60, lr=3e-4, warmup_steps=4, sft_steps=250, sft_lr=1e-3),
    "small-llama": Setting(steps=24, lr=3e-5, warmup_steps=2, sft_steps=150, sft_lr=3e-4),
}


# A local model directory (--models /path/to/model) trains as it is: no warm-up.
LOCAL = Setting(steps=8, lr=3e-5, warmup_steps=1, sft_steps=0, sft_lr=0.0)


def setting(model: str) -> Setting:
    """A builtin's settings, or LOCAL for a model directory."""
    return SETTINGS.get(model, LOCAL)


# --- shared inputs: the warm-up, the prompts, the reward, the held-out score -----------------


def warmup_checkpoint(model: str) -> Path:
    """The SFT warm-up both trainers start from, trained once and cached: the acceptance test's
    sloppy demonstrations (40% of words reversed, the rest copied), so that the policy is partly
    right and the learning curves have somewhere to go."""
    from gro_core.models.builtin import default_cache_dir
    from gro_core.spec import load_spec
    from gro_core.tasks import reverse_copy_demonstrations
    from gro_core.trainers import run

    if model not in SETTINGS:  # a local model directory: both trainers start from it as it is
        return Path(model)
    s = SETTINGS[model]
    out = default_cache_dir() / "bench" / f"online-{model}-reverse-copy-sft-{s.sft_steps}"
    checkpoint = out / "checkpoints" / f"step-{s.sft_steps}"
    if not checkpoint.is_dir():
        print(f"  warm-up: SFT of {model}, {s.sft_steps} steps", file=sys.stderr, flush=True)
        out.mkdir(parents=True, exist_ok=True)
        demos = out / "demos.jsonl"
        with demos.open("w", encoding="utf-8") as f:
            for row in reverse_copy_demonstrations(s.sft_steps * 32, seed=SEED, reversed_share=0.4):
                f.write(
                    json.dumps({"prompt": row["prompt"], "completion": row["completion"]}) + "\n"
                )
        spec = {
            "model": f"builtin:{model}",
            "method": "sft",
            "data": {"train": str(demos)},
            "train": {"steps": s.sft_steps, "batch_size": 32, "lr": s.sft_lr, "seed": SEED},
            "eval": {"every": 0},
            "checkpoint": {"every": 0, "keep": 1},
        }
        run(load_spec(spec), out)
    return checkpoint


def write_prompts(path: Path, n: int) -> None:
    from gro_core.tasks import generate

    with path.open("w", encoding="utf-8") as f:
        for row in generate(TASK, n, seed=SEED):
            f.write(json.dumps({"prompt": row["prompt"], "answer": row["answer"]}) + "\n")


def scorer() -> Any:
    """gro's scorer for REWARDS: both trainers' rewards come from this same code."""
    from gro_core.rewards import build_scorer
    from gro_core.spec import load_spec

    spec = load_spec({"model": "x", "method": "grpo", "data": {"train": "x"}, "rewards": REWARDS})
    return build_scorer(spec.rewards)


@torch.no_grad()
def held_out_reward(model: torch.nn.Module, tokenizer: Any) -> float:
    """Mean greedy exact-match reward on EVAL_PROMPTS held-out prompts."""
    from gro_core.data.encode import encode_prompt
    from gro_core.rollout.sampling import RolloutSettings, sample
    from gro_core.tasks import generate

    rows = generate(TASK, EVAL_PROMPTS, seed=SEED, split="eval")
    prompts = [encode_prompt(tokenizer, r["prompt"]) for r in rows]
    out = sample(model, tokenizer, prompts, 1, RolloutSettings(MAX_NEW_TOKENS, greedy=True))
    texts = tokenizer.batch_decode(out.completion_ids, skip_special_tokens=True)
    return sum(scorer()(texts, rows).total) / len(rows)


class Timer:
    """Seconds spent inside wrapped calls, and the tokens the sampling calls saw."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.prompt_tokens = self.completion_tokens = self.completions = 0

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

        return timed

    def count(self, prompts: list[list[int]], completions: list[list[int]]) -> None:
        self.prompt_tokens += sum(len(p) for p in prompts)
        self.completion_tokens += sum(len(c) for c in completions)
        self.completions += len(completions)
