"""The detached view of one batch that every GRO component reads.

`gro_loss` builds it once; advantages, anchors and weights are pure functions of it and of
the config, so each can be tested alone and none can reach the autograd graph by accident.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from torch import Tensor

from gro_core.objective.groups import Groups


@dataclass(frozen=True)
class GROBatch:
    """Detached per-token and per-completion quantities of B completions, T tokens.

    Token tensors are (B, T) and zero outside `mask`; sequence tensors are (B,). What not
    every config needs (lengths, penalised rewards) is computed on first use.
    """

    logprobs: Tensor  # (B, T) log π_θ of each completion token
    old_logprobs: Tensor  # (B, T) under the policy that sampled the batch
    ref_logprobs: Tensor | None  # (B, T) under the frozen reference
    mask: Tensor  # (B, T) bool, completion tokens
    maskf: Tensor  # (B, T) the mask as 0/1 in the compute dtype
    seq_logprobs: Tensor  # (B,) ℓ_i
    seq_old: Tensor  # (B,) ℓ^old_i
    seq_ref: Tensor | None  # (B,) ℓ^ref_i
    raw_rewards: Tensor  # (B,) as given
    reward_kl_coef: float  # RLOO's KL-in-reward coefficient, 0 when off
    baseline_rewards: Tensor | None  # (B,) reward of the greedy completion (ReMax)
    kl_ref_point: Tensor | None  # () z0 for KTO, when the trainer estimated it
    kl_pairs: tuple[Tensor, Tensor] | None  # (M,) policy and reference ℓ of mismatched pairs
    groups: Groups
    # (2, 3) [n, Σx, Σx²] over the whole step (micro-batches and ranks) of what the estimator
    # (row 0) and adv_normalize (row 1) normalise by; None: this batch is the step.
    moments: Tensor | None = None

    @property
    def size(self) -> int:
        return int(self.mask.shape[0])

    @cached_property
    def lengths(self) -> Tensor:
        """(B,) |y_i|, at least 1 so divisions are safe."""
        return self.maskf.sum(dim=1).clamp(min=1)

    @cached_property
    def rewards(self) -> Tensor:
        """(B,) rewards after RLOO's KL-in-reward penalty r − kl_coef · Σ_t (old − ref)."""
        if self.reward_kl_coef == 0 or self.seq_ref is None:
            return self.raw_rewards
        return self.raw_rewards - self.reward_kl_coef * (self.seq_old - self.seq_ref)
