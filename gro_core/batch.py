"""The detached view of one batch that every GRO component reads.

`gro_loss` builds it once; advantages, anchors and weights are pure functions of it and of
the config, so each can be tested alone and none can reach the autograd graph by accident.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from gro_core.groups import Groups


@dataclass(frozen=True)
class Batch:
    """Detached per-token and per-completion quantities of B completions, T tokens.

    Token tensors are (B, T) and zero outside `mask`; sequence tensors are (B,).
    """

    logprobs: Tensor  # (B, T) log π_θ of each completion token, detached
    old_logprobs: Tensor  # (B, T) under the policy that sampled the batch
    ref_logprobs: Tensor | None  # (B, T) under the frozen reference
    mask: Tensor  # (B, T) bool, completion tokens
    lengths: Tensor  # (B,) |y_i|, at least 1 so divisions are safe
    seq_logprobs: Tensor  # (B,) ℓ_i
    seq_old: Tensor  # (B,) ℓ^old_i
    seq_ref: Tensor | None  # (B,) ℓ^ref_i
    rewards: Tensor  # (B,) after any KL-in-reward penalty
    baseline_rewards: Tensor | None  # (B,) reward of the greedy completion (ReMax)
    kl_ref_point: Tensor | None  # () z0 for KTO, when the trainer estimated it
    groups: Groups

    @property
    def size(self) -> int:
        return int(self.mask.shape[0])
