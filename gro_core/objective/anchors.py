"""x, the quantity an anchor measures, and the anchors: d_i = x_i − sg(anchor_i).

Records (what each needs) are in components.py. Shapes follow the batch: (B,) per completion,
(B, T) for the per-token anchor `old`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from gro_core.objective.batch import GROBatch
from gro_core.objective.components import X_KINDS

if TYPE_CHECKING:
    from gro_core.objective.config import GROConfig


def x_log_ratio(batch: GROBatch) -> Tensor:
    """(B,) Δ_i = ℓ_i − ℓ^ref_i: the completion's log-ratio to the reference."""
    assert batch.seq_ref is not None  # checked by gro_loss
    return batch.seq_logprobs - batch.seq_ref


def x_log_likelihood(batch: GROBatch) -> Tensor:
    """(B,) ℓ_i: the completion's log-likelihood under the policy."""
    return batch.seq_logprobs


def anchor_x(batch: GROBatch, adv_sign: Tensor, cfg: GROConfig) -> Tensor:
    """(B,) x_i: Δ_i (log-ratio to the reference) or ℓ_i, optionally per token.

    With `x_neg_scale` ≠ 1, x of completions with a negative advantage is scaled (CPL's λ).
    """
    x = X_KINDS[cfg.x].function(batch)
    if cfg.x_token_mean:
        x = x / batch.lengths
    if cfg.x_neg_scale != 1.0:
        x = torch.where(adv_sign < 0, cfg.x_neg_scale * x, x)
    return x


# --- anchors: d = x − sg(anchor) ---------------------------------------------------------


def anchor_none(batch: GROBatch, sign: Tensor, cfg: GROConfig) -> Tensor:
    """No anchor: d = 0, so w is a constant."""
    return torch.zeros_like(batch.seq_logprobs)


def anchor_zero(batch: GROBatch, sign: Tensor, cfg: GROConfig) -> Tensor:
    """d_i = x_i: each completion measured on its own, against 0 (SPPO, APO, NCA, BCO)."""
    return anchor_x(batch, sign, cfg)


def anchor_group_mean(batch: GROBatch, sign: Tensor, cfg: GROConfig) -> Tensor:
    """d_i = x_i − mean x of the other members of its group (0 for a group of one)."""
    x = anchor_x(batch, sign, cfg)
    g = batch.groups
    others = g.sum(x)[g.index] - x
    n_others = (g.members() - 1).to(x.dtype)
    anchor = torch.where(n_others > 0, others / n_others.clamp(min=1), x)
    return x - anchor


def anchor_pair(batch: GROBatch, sign: Tensor, cfg: GROConfig) -> Tensor:
    """d_i = x_i − x_j, j the other member of its pair.

    Computed as 2x_i − S_g, S_g the pair's sum; gro_loss has checked that every group has
    exactly two members."""
    x = anchor_x(batch, sign, cfg)
    return 2 * x - batch.groups.sum(x)[batch.groups.index]


def anchor_pair_sorted(batch: GROBatch, sign: Tensor, cfg: GROConfig) -> Tensor:
    """AOT: d_i = s_i·(m_p − r_(k)), m_p = x⁺ − x⁻ the pair's margin under the policy, r_(k)
    the reference margin of the same rank k among the batch's pairs (both sorted).

    The policy's margins are matched to the reference's by rank, not by pair: AOT's
    stochastic dominance of the policy's margin distribution over the reference's."""
    assert batch.seq_ref is not None  # checked by gro_loss
    g = batch.groups
    x = anchor_x(batch, sign, cfg)
    x_ref = batch.seq_ref / batch.lengths if cfg.x_token_mean else batch.seq_ref
    margin, ref_margin = g.sum(sign * x), g.sum(sign * x_ref)  # (P,) chosen − rejected
    rank = margin.argsort().argsort()
    matched = ref_margin.sort().values[rank]
    return sign * (margin - matched)[g.index]


def anchor_opposite(batch: GROBatch, sign: Tensor, cfg: GROConfig) -> Tensor:
    """d_i = x_i − mean x of the group members whose advantage has the opposite sign; 0 when
    there is none, or A_i = 0."""
    x = anchor_x(batch, sign, cfg)
    g = batch.groups
    pos = (sign > 0).to(x.dtype)
    neg = (sign < 0).to(x.dtype)
    pos_n, neg_n = g.sum(pos)[g.index], g.sum(neg)[g.index]
    pos_mean = g.sum(x * pos)[g.index] / pos_n.clamp(min=1)
    neg_mean = g.sum(x * neg)[g.index] / neg_n.clamp(min=1)
    anchor = torch.where((sign > 0) & (neg_n > 0), neg_mean, x)
    anchor = torch.where((sign < 0) & (pos_n > 0), pos_mean, anchor)
    return x - anchor


def kl_point(batch: GROBatch) -> Tensor:
    """() KTO's z0: the trainer's estimate if given, else TRL's estimator on the batch
    itself: max(0, mean_i Δ(x_i, y_{i−1})), each prompt with the previous example's
    completion, when those mismatched log-probs were given; else max(0, mean_i Δ_i)."""
    if batch.kl_ref_point is not None:
        return batch.kl_ref_point
    if batch.kl_pairs is not None:
        policy, ref = batch.kl_pairs
        return (policy - ref).mean().clamp(min=0)
    assert batch.seq_ref is not None  # checked by gro_loss
    return (batch.seq_logprobs - batch.seq_ref).mean().clamp(min=0)


def anchor_kl_point(batch: GROBatch, sign: Tensor, cfg: GROConfig) -> Tensor:
    """d_i = x_i − z0, KTO's reference point: the trainer's estimate, else max(0, mean Δ)."""
    return anchor_x(batch, sign, cfg) - kl_point(batch)


def anchor_old(batch: GROBatch, sign: Tensor, cfg: GROConfig) -> Tensor:
    """Per token, d = logprobs − old_logprobs: the log importance ratio. -> (B, T).

    Both are zero outside the mask, so d is too (ratio 1, never clipped)."""
    return batch.logprobs - batch.old_logprobs


def anchor_old_seq(batch: GROBatch, sign: Tensor, cfg: GROConfig) -> Tensor:
    """(B,) d_i = ℓ_i − ℓ^old_i, the completion's log importance ratio (RLOO's), or its
    mean per token with x_token_mean (GSPO's)."""
    d = batch.seq_logprobs - batch.seq_old
    return d / batch.lengths if cfg.x_token_mean else d
