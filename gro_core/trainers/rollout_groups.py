"""A step's scored groups of rollouts, and what an update reads of them: gro_loss's
arguments for a micro-batch of groups, and a few scored samples for samples.jsonl."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from gro_core.data.encode import Sequence, right_align
from gro_core.objective.config import GROConfig
from gro_core.objective.loss import GROOutput
from gro_core.trainers.samples import scored_samples


@dataclass
class RolloutGroup:
    """The G completions of one prompt, scored, with what the update needs per completion."""

    sequences: list[Sequence]
    texts: list[str]
    row: dict[str, Any]
    ref_logprobs: list[Tensor] | None = None
    old_logprobs: list[Tensor] | None = None
    baseline: float | None = None  # ReMax: reward of this prompt's greedy completion
    pair: bool = False  # an offline preference pair (counted once in train/samples)


def loss_inputs(
    cfg: GROConfig,
    groups: list[RolloutGroup],
    logprobs: Tensor | None,
    mask: Tensor,
    *,
    old_only: bool = False,
) -> dict[str, Tensor | None]:
    """gro_loss's arguments for `groups`, given their (B, K) log-probs and completion mask
    (right-aligned, as the trainers lay them out). With `old_only` the stored old log-probs
    stand in for the current ones (for gro_moments); `logprobs` None: nothing reads them."""
    device, width = mask.device, mask.shape[1]
    seqs = [s for g in groups for s in g.sequences]

    def stacked(name: str) -> Tensor | None:
        rows = [t for g in groups for t in (getattr(g, name) or [])]
        return right_align(rows, width).to(device) if rows else None

    baseline = None
    if cfg.needs_baseline_rewards:
        baseline = torch.tensor([g.baseline for g in groups for _ in g.sequences], device=device)
    old = stacked("old_logprobs")
    if old_only and old is not None:
        logprobs = old
    return {
        "logprobs": torch.zeros(mask.shape, device=device) if logprobs is None else logprobs,
        "mask": mask,
        "rewards": torch.tensor([s.reward for s in seqs], device=device),
        "group_ids": torch.tensor([s.group for s in seqs], device=device),
        "old_logprobs": old,
        "ref_logprobs": stacked("ref_logprobs"),
        "baseline_rewards": baseline,
    }


def store_rows(groups: list[RolloutGroup], rows: list[Tensor], name: str) -> None:
    """Hand each group its completions' rows of per-token values, in order."""
    start = 0
    for group in groups:
        setattr(group, name, rows[start : start + len(group.sequences)])
        start += len(group.sequences)


def group_samples(
    groups: list[RolloutGroup], out: GROOutput, limit: int = 8
) -> list[dict[str, Any]]:
    entries = [
        (group.row.get("prompt"), text, seq.reward)
        for group in groups
        for text, seq in zip(group.texts, group.sequences, strict=True)
    ]
    return scored_samples(entries, out, limit)
