"""Online GRO: sample completions, score them, and update on them with a GRO preset.

Each step: a batch of prompts → G rollouts each (one batched decode) → rewards → reference
log-probs when the preset uses them → `num_iterations` updates on the batch. Old log-probs
are computed by an extra forward only when num_iterations > 1; with one update the batch's
own log-probs (detached) are the old ones, as gro_loss assumes by default.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from transformers import PreTrainedTokenizerBase

from gro_core.evaluation import evaluate_policy
from gro_core.models import Reference
from gro_core.objective import gro_loss
from gro_core.presets import get_preset
from gro_core.rewards import build_scorer
from gro_core.rollout import RolloutSettings, sample
from gro_core.spec import JobSpec
from gro_core.trainers.encode import (
    Example,
    Sequence,
    collate,
    completion_logprobs,
    right_align,
    scored_samples,
    unpad_rows,
)
from gro_core.trainers.offline import Data, StepResult, aggregation_units


@dataclass
class RolloutGroup:
    """The G completions of one prompt, scored, with what the update needs per completion."""

    sequences: list[Sequence]
    texts: list[str]
    row: dict[str, Any]
    ref_logprobs: list[Tensor] | None = None
    old_logprobs: list[Tensor] | None = None
    baseline: float | None = None  # ReMax: reward of this prompt's greedy completion


def python_rewards_allowed() -> bool:
    """The operator's switch (an environment setting, never the job spec) for python rewards."""
    return os.environ.get("GRO_ALLOW_PYTHON_REWARDS", "").lower() in ("1", "true", "yes")


class OnlineObjective:
    """rloo, remax, grpo, reinforce_pp, awr, gro on prompts with reward functions."""

    def __init__(
        self,
        spec: JobSpec,
        tokenizer: PreTrainedTokenizerBase,
        data: Data,
        device: torch.device,
        reference: Reference | None,
    ) -> None:
        self.cfg = get_preset(spec.method, **spec.method_args)
        self.spec, self.tokenizer, self.data, self.device = spec, tokenizer, data, device
        self.reference = reference
        self.iterations = spec.train.num_iterations
        self.scorer = build_scorer(
            spec.rewards,
            task=spec.data.task,
            eos=tokenizer.eos_token,
            allow_python=python_rewards_allowed(),
        )
        self.scorer.check_rows([e.row for e in data.train[:1000]])
        r = spec.rollout
        self.settings = RolloutSettings(
            r.max_new_tokens, r.temperature, r.top_p, r.top_k, stop=tuple(r.stop)
        )
        self.last_metrics: dict[str, float] = {}

    # --- collecting a batch ---------------------------------------------------------------

    def collect(
        self, model: torch.nn.Module, step: int, prompts: list[Example]
    ) -> list[RolloutGroup]:
        """Rollouts for `step`'s prompts: seeded by (seed, step), so a resume redraws them."""
        started = time.perf_counter()
        # On the model's device: torch.multinomial refuses a generator from another device.
        gen = torch.Generator(self.device).manual_seed(self.spec.train.seed * 1_000_003 + step)
        g = self.spec.rollout.num_generations
        out = sample(
            model,
            self.tokenizer,
            [list(e.sequences[0].prompt_ids) for e in prompts],
            g,
            self.settings,
            gen,
        )
        texts = self.tokenizer.batch_decode(out.completion_ids, skip_special_tokens=True)
        rows = [e.row for e in prompts for _ in range(g)]
        scored = self.scorer(texts, rows)
        groups = self._groups(prompts, out, texts, scored.total, g)
        rollout_s = time.perf_counter() - started
        if self.cfg.needs_baseline_rewards:
            self._add_baselines(model, prompts, groups)
        self._add_logprobs(model, groups)
        lengths = [len(c) for c in out.completion_ids]
        self.last_metrics = {
            **scored.per_function,
            "perf/rollout_s": rollout_s,
            "completion/length": sum(lengths) / len(lengths),
        }
        return groups

    def _groups(self, prompts: list[Example], out, texts, rewards, g) -> list[RolloutGroup]:
        groups = []
        for p, example in enumerate(prompts):
            rows = range(p * g, (p + 1) * g)
            seqs = [
                Sequence(
                    tuple(out.prompt_ids[i]),
                    tuple(out.completion_ids[i]) or (self.tokenizer.eos_token_id,),
                    rewards[i],
                    p,
                )
                for i in rows
            ]
            groups.append(RolloutGroup(seqs, [texts[i] for i in rows], example.row))
        return groups

    def _add_baselines(self, model, prompts: list[Example], groups: list[RolloutGroup]) -> None:
        greedy = RolloutSettings(self.settings.max_new_tokens, greedy=True, stop=self.settings.stop)
        out = sample(
            model, self.tokenizer, [list(e.sequences[0].prompt_ids) for e in prompts], 1, greedy
        )
        texts = self.tokenizer.batch_decode(out.completion_ids, skip_special_tokens=True)
        for group, reward in zip(
            groups, self.scorer(texts, [e.row for e in prompts]).total, strict=True
        ):
            group.baseline = reward

    @torch.no_grad()
    def _add_logprobs(self, model: torch.nn.Module, groups: list[RolloutGroup]) -> None:
        """Reference log-probs (if the preset uses them) and old ones (if it updates twice)."""
        seqs = [s for g in groups for s in g.sequences]
        batch = collate(seqs, self.tokenizer.pad_token_id).to(self.device)
        if self.cfg.needs_reference and self.reference is not None:
            with self.reference.scoring() as ref_model:
                ref_rows = unpad_rows(completion_logprobs(ref_model, batch), batch.mask)
                _store(groups, ref_rows, "ref_logprobs")
        if self.iterations > 1:
            was = model.training
            model.eval()
            _store(
                groups, unpad_rows(completion_logprobs(model, batch), batch.mask), "old_logprobs"
            )
            model.train(was)

    # --- one update on a micro-batch of groups -----------------------------------------------

    def units(self, groups: list[RolloutGroup]) -> float:
        return aggregation_units(self.cfg, [g.sequences for g in groups])

    def step(self, model: torch.nn.Module, groups: list[RolloutGroup]) -> StepResult:
        seqs = [s for g in groups for s in g.sequences]
        batch = collate(seqs, self.tokenizer.pad_token_id).to(self.device)
        logprobs = completion_logprobs(model, batch)
        width = batch.mask.shape[1]

        def stacked(name: str) -> Tensor | None:
            rows = [t for g in groups for t in (getattr(g, name) or [])]
            return right_align(rows, width).to(self.device) if rows else None

        baseline = None
        if self.cfg.needs_baseline_rewards:
            baseline = torch.tensor([g.baseline for g in groups for _ in g.sequences])
        out = gro_loss(
            self.cfg,
            logprobs=logprobs,
            mask=batch.mask,
            rewards=batch.rewards,
            group_ids=batch.group_ids,
            old_logprobs=stacked("old_logprobs"),
            ref_logprobs=stacked("ref_logprobs"),
            baseline_rewards=None if baseline is None else baseline.to(self.device),
        )
        metrics = {k: torch.tensor(v) for k, v in out.stats.items()}
        metrics |= {k: torch.tensor(v) for k, v in self.last_metrics.items()}
        return out.loss, metrics, _samples(groups, out)

    # --- evaluation ------------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module, max_examples: int) -> dict[str, float]:
        """Held-out greedy and sampled reward, pass@k, KL to the reference, diversity."""
        examples = self.data.eval[:max_examples]
        if not examples:
            return {}
        s = self.settings
        return evaluate_policy(
            model,
            self.tokenizer,
            examples,
            [e.row for e in examples],
            self.scorer,
            num_generations=self.spec.rollout.num_generations,
            max_new_tokens=s.max_new_tokens,
            temperature=s.temperature,
            top_p=s.top_p,
            stop=s.stop,
            reference=self.reference,
            seed=self.spec.train.seed,
        )


def _store(groups: list[RolloutGroup], rows: list[Tensor], name: str) -> None:
    """Hand each group its completions' rows of per-token values, in order."""
    start = 0
    for group in groups:
        setattr(group, name, rows[start : start + len(group.sequences)])
        start += len(group.sequences)


def _samples(groups: list[RolloutGroup], out: Any, limit: int = 8) -> list[dict[str, Any]]:
    entries = [
        (group.row.get("prompt"), text, seq.reward)
        for group in groups
        for text, seq in zip(group.texts, group.sequences, strict=True)
    ]
    return scored_samples(entries, out, limit)
