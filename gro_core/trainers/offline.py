"""The offline objectives: SFT, the reward model (eq. 1), and GRO presets on fixed data.

Each objective turns a list of Examples into a loss and metrics, and evaluates a model on
held-out examples; the loop in gro_core.trainers.loop does everything else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor
from transformers import PreTrainedTokenizerBase

from gro_core.data.encode import (
    Example,
    TokenBatch,
    collate,
    completion_logprobs,
    mismatched,
)
from gro_core.methods import get_preset
from gro_core.objective.config import GROConfig
from gro_core.objective.loss import GROOutput, gro_loss
from gro_core.rollout.sampling import RolloutSettings, sample
from gro_core.tasks import task_reward
from gro_core.trainers.datasets import Data
from gro_core.trainers.prompt_sharing import collate_shared, shareable
from gro_core.trainers.protocol import Collected, Metrics, StepResult
from gro_core.trainers.reference_cache import ReferenceCache
from gro_core.trainers.samples import scored_samples


def _sequences_batch(
    examples: list[Example], pad_id: int, device: torch.device, share: bool = False
) -> TokenBatch:
    """The examples' sequences in one batch; with `share`, a pair's prompt is computed
    once for both completions where the examples allow it (`collate_shared`)."""
    groups = [e.sequences for e in examples]
    if share and shareable(groups):
        return collate_shared(groups, pad_id).to(device)
    return collate([s for g in groups for s in g], pad_id).to(device)


def _chunks(items: list[Example], size: int) -> list[list[Example]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class OfflineObjective:
    """What the offline objectives share: each step trains on the sampled examples themselves,
    once (one optimizer update per batch)."""

    iterations = 1

    def collect(
        self,
        model: torch.nn.Module,
        step: int,
        examples: list[Example],
        first: int = 0,
        total: int | None = None,
    ) -> Collected[Example]:
        """The examples as they are; each counts once for train/samples (a pair too)."""
        return Collected(examples, samples=len(examples))

    def step_moments(
        self, model: torch.nn.Module, micro: list[list[Example]], total: Callable[[Tensor], Tensor]
    ) -> Tensor | None:
        """None: no offline loss normalises over its batch."""
        return None


class SFTObjective(OfflineObjective):
    """Cross-entropy on completion tokens, the token mean over the batch."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, data: Data, device: torch.device):
        self.tokenizer, self.data, self.device = tokenizer, data, device

    def units(self, examples: list[Example]) -> float:
        """The loss is a mean over completion tokens."""
        return float(sum(len(s.completion_ids) for e in examples for s in e.sequences))

    def step(
        self, model: torch.nn.Module, examples: list[Example], moments: Tensor | None = None
    ) -> StepResult:
        batch = _sequences_batch(examples, self.tokenizer.pad_token_id, self.device)
        logprobs = completion_logprobs(model, batch)
        loss = -logprobs.sum() / batch.mask.sum().clamp(min=1)
        return loss, {"loss/sft": loss.detach()}, []

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module, max_examples: int) -> dict[str, float]:
        examples = self.data.eval[:max_examples]
        if not examples:
            return {}
        total, tokens = 0.0, 0
        for chunk in _chunks(examples, 32):
            batch = _sequences_batch(chunk, self.tokenizer.pad_token_id, self.device)
            total += float(completion_logprobs(model, batch).sum())
            tokens += int(batch.mask.sum())
        metrics = {"eval/loss": -total / max(tokens, 1)}
        if self.data.task is not None:
            metrics["eval/accuracy"] = task_accuracy(
                model, self.tokenizer, examples, self.data.task
            )
        return metrics


def task_accuracy(
    model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, examples: list[Example], task: str
) -> float:
    """Share of held-out prompts whose greedy completion the task's rule reward accepts."""
    longest = max(len(s.completion_ids) for e in examples for s in e.sequences)
    settings = RolloutSettings(max_new_tokens=max(8, longest + 4), greedy=True)
    completions = []
    for chunk in _chunks(examples, 64):  # bounded memory for long eval sets
        prompts = [list(e.sequences[0].prompt_ids) for e in chunk]
        completions += sample(model, tokenizer, prompts, 1, settings).completion_ids
    texts = tokenizer.batch_decode(completions, skip_special_tokens=True)
    scores = task_reward(task)(texts, [e.row for e in examples])
    return sum(scores) / len(scores)


class RewardModelObjective(OfflineObjective):
    """Bradley–Terry on pairs (the paper's eq. 1): −log σ(r(x, y_w) − r(x, y_l))."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, data: Data, device: torch.device):
        self.tokenizer, self.data, self.device = tokenizer, data, device

    def _scores(self, model: torch.nn.Module, examples: list[Example]) -> Tensor:
        """(P, 2) scalar rewards of (chosen, rejected), one forward for all 2P sequences."""
        batch = _sequences_batch(examples, self.tokenizer.pad_token_id, self.device)
        out = model(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            position_ids=batch.position_ids,
        )
        return out.logits.float().view(-1, 2)

    def units(self, examples: list[Example]) -> float:
        """The loss is a mean over pairs."""
        return float(len(examples))

    def step(
        self, model: torch.nn.Module, examples: list[Example], moments: Tensor | None = None
    ) -> StepResult:
        scores = self._scores(model, examples)
        margin = scores[:, 0] - scores[:, 1]
        loss = -F.logsigmoid(margin).mean()
        metrics = {
            "loss/reward_model": loss.detach(),
            "reward/margin": margin.detach().mean(),
            "reward/accuracy": (margin.detach() > 0).float().mean(),
        }
        return loss, metrics, []

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module, max_examples: int) -> dict[str, float]:
        examples = self.data.eval[:max_examples]
        if not examples:
            return {}
        margins = torch.cat(
            [
                self._scores(model, c) @ torch.tensor([1.0, -1.0], device=self.device)
                for c in _chunks(examples, 32)
            ]
        )
        return {
            "eval/loss": float(-F.logsigmoid(margins).mean()),
            "eval/pref_accuracy": float((margins > 0).float().mean()),
            "eval/margin": float(margins.mean()),
        }


class OfflineGROObjective(OfflineObjective):
    """A GRO preset (dpo, kto, cpl, awr, gro) on preference or unpaired data.

    Reference log-probs come from a cache filled once before training. Unpaired data has
    no natural group: for advantages that compare within a group, the completions of one
    batch form the group.
    """

    def __init__(
        self,
        method: str,
        method_args: dict[str, Any],
        tokenizer: PreTrainedTokenizerBase,
        data: Data,
        device: torch.device,
        reference: ReferenceCache | None,
        share_prompts: bool = False,
    ) -> None:
        self.cfg = get_preset(method, **method_args)
        self.tokenizer, self.data, self.device, self.reference = tokenizer, data, device, reference
        self.share_prompts = share_prompts  # the model scores collate_shared batches right
        self.batch_groups = data.kind == "unpaired" and self.cfg.compares_in_group
        self.kl_pairs: dict[str, list[Example]] = {}
        if self.cfg.anchor == "kl_point":
            self.kl_pairs = {"train": mismatched(data.train), "eval": mismatched(data.eval)}

    @torch.no_grad()
    def _kl_point(self, model: torch.nn.Module, examples: list[Example], split: str) -> Tensor:
        """KTO's z0 = max(0, mean Δ) over mismatched prompt/completion pairs of the batch,
        without gradient (TRL's estimator; one extra forward per step). In training over
        several ranks the ranks' means are averaged before the clamp, as TRL gathers them:
        with equal shares that is the mean over the whole micro-batch, the z0 one process
        takes. (Evaluation under ddp runs on rank 0 alone: no collective there.)"""
        pairs = [self.kl_pairs[split][e.index] for e in examples]
        batch = _sequences_batch(pairs, self.tokenizer.pad_token_id, self.device)
        policy = completion_logprobs(model, batch).sum(dim=1)
        assert self.reference is not None
        ref = self.reference.batch(f"{split}_kl", pairs, batch.mask.shape[1]).to(self.device)
        mean = (policy - ref.sum(dim=1)).mean()
        if split == "train" and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(mean)
            mean /= dist.get_world_size()
        return mean.clamp(min=0)

    def _score(
        self, model: torch.nn.Module, examples: list[Example], split: str
    ) -> tuple[TokenBatch, Tensor, Tensor | None, GROOutput]:
        """The examples' batch, (B, K) log-probs, reference log-probs and gro_loss output."""
        pad = self.tokenizer.pad_token_id
        batch = _sequences_batch(examples, pad, self.device, self.share_prompts)
        logprobs = completion_logprobs(model, batch)
        ref = None
        if self.reference is not None:
            ref = self.reference.batch(split, examples, batch.mask.shape[1]).to(self.device)
        group_ids = torch.zeros_like(batch.group_ids) if self.batch_groups else batch.group_ids
        if self.cfg.anchor == "kl_point":  # KTO: every example is its own group
            group_ids = torch.arange(len(group_ids), device=self.device)
        z0 = self._kl_point(model, examples, split) if self.kl_pairs else None
        out = gro_loss(
            self.cfg,
            logprobs=logprobs,
            mask=batch.mask,
            rewards=batch.rewards,
            group_ids=group_ids,
            ref_logprobs=ref,
            kl_ref_point=z0,
        )
        return batch, logprobs, ref, out

    def units(self, examples: list[Example]) -> float:
        return aggregation_units(self.cfg, [e.sequences for e in examples])

    def step(
        self, model: torch.nn.Module, examples: list[Example], moments: Tensor | None = None
    ) -> StepResult:
        *_, out = self._score(model, examples, "train")
        # Offline "rewards" are the ±1 labels: their mean is the label balance, not a reward.
        metrics: Metrics = {k: v for k, v in out.stats.items() if not k.startswith("reward/")}
        return out.loss, metrics, _samples(examples, out)

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module, max_examples: int) -> dict[str, float]:
        examples = self.data.eval[:max_examples]
        if not examples:
            return {}
        margins, nll, tokens = [], 0.0, 0
        for chunk in _chunks(examples, 32):
            batch, logprobs, ref, _ = self._score(model, chunk, "eval")
            seq = logprobs.sum(dim=1)
            x = seq - ref.sum(dim=1) if ref is not None else seq / batch.mask.sum(dim=1)
            margins.append(_margins(x, batch, self.data.kind))
            chosen = batch.rewards > 0
            nll -= float(logprobs[chosen].sum())
            tokens += int(batch.mask[chosen].sum())
        margin = torch.cat(margins)
        beta = self.cfg.beta if self.cfg.beta > 0 else 1.0
        metrics = {
            "eval/pref_accuracy": float((margin > 0).float().mean()),
            "eval/margin": float(margin.mean()),
            "eval/loss": float(-F.logsigmoid(beta * margin).mean()),
            "eval/nll": nll / max(tokens, 1),
        }
        if self.data.task is not None:
            # Rows of a built-in task carry the answer: what the policy now generates, greedily,
            # is what a user compares methods by, beyond the margins.
            metrics["eval/accuracy"] = task_accuracy(
                model, self.tokenizer, examples, self.data.task
            )
        return metrics


def aggregation_units(cfg: GROConfig, groups: list[Any]) -> float:
    """What the preset's aggregation averages over (its record's `units`), counted in a
    micro-batch of groups of sequences: the loop weights micro-batches (and ranks) by it, so
    accumulated gradients equal the gradient of the whole batch."""
    units = cfg.component("aggregation").units
    if units == "groups":
        return float(len(groups))
    if units == "tokens":
        return float(sum(len(s.completion_ids) for g in groups for s in g))
    return float(sum(len(g) for g in groups))  # sequences


def _margins(x: Tensor, batch: TokenBatch, kind: str) -> Tensor:
    """Implicit-reward margins: chosen − rejected per pair, or ±x per unpaired example."""
    if kind == "preference":
        return (x * batch.rewards).view(-1, 2).sum(dim=1)
    return x * batch.rewards


def _samples(examples: list[Example], out: GROOutput, limit: int = 4) -> list[dict[str, Any]]:
    """A few scored completions of the step, as samples.jsonl records (docs/jobspec.md)."""
    entries = [
        (example.row.get("prompt"), example.row.get(name), seq.reward)
        for example in examples
        for name, seq in zip(_completion_fields(example), example.sequences, strict=True)
    ]
    return scored_samples(entries, out, limit)


def _completion_fields(example: Example) -> tuple[str, ...]:
    return ("chosen", "rejected") if len(example.sequences) == 2 else ("completion",)
