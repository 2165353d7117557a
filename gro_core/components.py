"""The GRO components besides the advantage: f, x, anchors, weights w(d), aggregations.

GRO_SPEC.md: ∇J = E_i[w(d_i) · f(A_i) · ∇ℓ_i], d_i = x_i − sg(anchor_i). Every function here
is pure and works on detached tensors; `gro_loss` only multiplies their product into the
log-probabilities. Shapes follow the advantage: (B,) per completion or (B, T) per token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from gro_core.batch import Batch

if TYPE_CHECKING:
    from gro_core.config import GROConfig


# --- f: monotone transform of the advantage ---------------------------------------------


def f_identity(adv: Tensor, cfg: GROConfig) -> Tensor:
    """f(A) = scale · A · (pos_weight if A ≥ 0 else neg_weight)."""
    if cfg.pos_weight == cfg.neg_weight:
        return (cfg.f_scale * cfg.pos_weight) * adv
    # Tensors of adv's dtype: Python scalars in torch.where would round through float32.
    side = torch.where(adv >= 0, adv.new_tensor(cfg.pos_weight), adv.new_tensor(cfg.neg_weight))
    return cfg.f_scale * adv * side


def f_exp(adv: Tensor, cfg: GROConfig) -> Tensor:
    """f(A) = min(exp(A/τ), max_weight): advantage-weighted maximum likelihood (eq. 33)."""
    return torch.exp(adv / cfg.tau).clamp(max=cfg.max_weight)


TRANSFORMS: dict[str, Callable[[Tensor, GROConfig], Tensor]] = {
    "identity": f_identity,
    "exp": f_exp,
}


# --- x: the quantity whose distance to an anchor is measured ----------------------------

X_KINDS = ("log_ratio", "log_likelihood")


def anchor_x(batch: Batch, adv_sign: Tensor, cfg: GROConfig) -> Tensor:
    """(B,) x_i: Δ_i (log-ratio to the reference) or ℓ_i, optionally per token.

    With `x_neg_scale` ≠ 1, x of completions with a negative advantage is scaled (CPL's λ).
    """
    if cfg.x == "log_ratio":
        assert batch.seq_ref is not None  # checked by gro_loss
        x = batch.seq_logprobs - batch.seq_ref
    else:
        x = batch.seq_logprobs
    if cfg.x_token_mean:
        x = x / batch.lengths
    if cfg.x_neg_scale != 1.0:
        x = torch.where(adv_sign < 0, cfg.x_neg_scale * x, x)
    return x


# --- anchors: d = x − sg(anchor) ---------------------------------------------------------


def anchor_none(batch: Batch, sign: Tensor, cfg: GROConfig) -> Tensor:
    """No anchor: d = 0, so w is a constant."""
    return torch.zeros_like(batch.seq_logprobs)


def anchor_group_mean(batch: Batch, sign: Tensor, cfg: GROConfig) -> Tensor:
    """d_i = x_i − mean x of the other members of its group (0 for a group of one)."""
    x = anchor_x(batch, sign, cfg)
    g = batch.groups
    others = g.sum(x)[g.index] - x
    n_others = (g.members() - 1).to(x.dtype)
    anchor = torch.where(n_others > 0, others / n_others.clamp(min=1), x)
    return x - anchor


def anchor_pair(batch: Batch, sign: Tensor, cfg: GROConfig) -> Tensor:
    """d_i = x_i − x of the other member of its pair: x_i − (x_i + x_j − x_i) = 2x_i − S_g.

    gro_loss has checked that every group has exactly two members."""
    x = anchor_x(batch, sign, cfg)
    return 2 * x - batch.groups.sum(x)[batch.groups.index]


def anchor_opposite(batch: Batch, sign: Tensor, cfg: GROConfig) -> Tensor:
    """d_i = x_i − mean x of the group members whose advantage has the opposite sign.

    With no such member, or A_i = 0, the anchor is x_i itself and d_i = 0.
    """
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


def kl_point(batch: Batch) -> Tensor:
    """() KTO's z0: the trainer's estimate if given, else max(0, mean_i Δ_i) of the batch."""
    if batch.kl_ref_point is not None:
        return batch.kl_ref_point
    assert batch.seq_ref is not None  # checked by gro_loss
    return (batch.seq_logprobs - batch.seq_ref).mean().clamp(min=0)


def anchor_kl_point(batch: Batch, sign: Tensor, cfg: GROConfig) -> Tensor:
    """d_i = x_i − z0 (KTO)."""
    return anchor_x(batch, sign, cfg) - kl_point(batch)


def anchor_old(batch: Batch, sign: Tensor, cfg: GROConfig) -> Tensor:
    """Per token, d = logprobs − old_logprobs: the log importance ratio. -> (B, T).

    Both are zero outside the mask, so d is too (ratio 1, never clipped)."""
    return batch.logprobs - batch.old_logprobs


AnchorFn = Callable[[Batch, Tensor, "GROConfig"], Tensor]

ANCHORS: dict[str, AnchorFn] = {
    "none": anchor_none,
    "pair": anchor_pair,
    "group_mean": anchor_group_mean,
    "opposite": anchor_opposite,
    "kl_point": anchor_kl_point,
    "old": anchor_old,
}
TOKEN_LEVEL_ANCHORS = frozenset({"old"})


# --- weights w(d, s), s = sign(A) -----------------------------------------------------------


def weight_one(d: Tensor, sign: Tensor, cfg: GROConfig) -> Tensor:
    """w = 1."""
    return torch.ones_like(d)


def weight_sigmoid(d: Tensor, sign: Tensor, cfg: GROConfig) -> Tensor:
    """w = σ(−β·s·d): large while a completion is not yet separated from its anchor."""
    return torch.sigmoid(-cfg.beta * sign * d)


def weight_sigmoid_slope(d: Tensor, sign: Tensor, cfg: GROConfig) -> Tensor:
    """w = σ(β·s·d)·σ(−β·s·d): KTO's value-function slope."""
    z = cfg.beta * sign * d
    return torch.sigmoid(z) * torch.sigmoid(-z)


def weight_clip(d: Tensor, sign: Tensor, cfg: GROConfig) -> Tensor:
    """PPO clipping in gradient form: w = ρ, zeroed where the clipped branch of the min wins
    (A > 0 and ρ > 1 + ε_hi, or A < 0 and ρ < 1 − ε_lo), whose gradient is zero."""
    ratio = torch.exp(d)
    clipped_hi = (sign > 0) & (ratio > 1 + cfg.epsilon_high)
    clipped_lo = (sign < 0) & (ratio < 1 - cfg.epsilon_low)
    return torch.where(clipped_hi | clipped_lo, torch.zeros_like(ratio), ratio)


WEIGHTS: dict[str, Callable[[Tensor, Tensor, GROConfig], Tensor]] = {
    "one": weight_one,
    "sigmoid": weight_sigmoid,
    "sigmoid_slope": weight_sigmoid_slope,
    "clip": weight_clip,
}


# --- aggregation: the normaliser each completion's token sum is multiplied by -------------
# A float when it is the same for every completion (one multiply on the scalar loss), else
# a (B,) tensor.


def agg_seq_mean(batch: Batch, cfg: GROConfig) -> float | Tensor:
    """Σ_i Σ_t / N."""
    return 1.0 / batch.size


def agg_group_mean(batch: Batch, cfg: GROConfig) -> float | Tensor:
    """Σ_i Σ_t / number of groups (DPO and CPL: mean over pairs)."""
    return 1.0 / batch.groups.num


def agg_seq_mean_token_mean(batch: Batch, cfg: GROConfig) -> float | Tensor:
    """mean over i of Σ_t / |y_i|."""
    return 1.0 / (batch.lengths * batch.size)


def agg_token_mean(batch: Batch, cfg: GROConfig) -> float | Tensor:
    """Σ_i Σ_t / Σ_i |y_i|."""
    return 1.0 / batch.mask.sum().clamp(min=1).to(batch.maskf.dtype)


def agg_seq_sum_norm(batch: Batch, cfg: GROConfig) -> float | Tensor:
    """Σ_i Σ_t / (N · L), L a fixed length (Dr. GRPO)."""
    return 1.0 / (batch.size * cfg.max_len)


AGGREGATIONS: dict[str, Callable[[Batch, GROConfig], float | Tensor]] = {
    "seq_mean": agg_seq_mean,
    "group_mean": agg_group_mean,
    "seq_mean_token_mean": agg_seq_mean_token_mean,
    "token_mean": agg_token_mean,
    "seq_sum_norm": agg_seq_sum_norm,
}
