"""The method's own loss value, reported beside the surrogate that gro_loss differentiates.

Each weight with a value function G(d, s), ∂G/∂d = w (weights.py, ratio_weights.py), gives
the loss whose gradient the preset follows: per completion (or token) −f(A)·G(d, s),
aggregated as the loss is. Two corrections make it the method's number, not just a loss
with the same gradient:

- when d reads a per-token mean (x_token_mean), ∂d_i/∂ℓ_i = 1/|y_i| while the coefficient
  multiplies ∇ℓ_i, so the value term is multiplied by |y_i| (SimPO, IPO, GSPO);
- a pair's anchors give both members the same u, and the pair's loss is counted once: from
  its chosen member (anchor records with value_terms "chosen").

Weights without G (one, cispo) and anchors without value_terms (GRO's opposite, group_mean)
report the surrogate −Agg(sg(w·f(A))·ℓ) itself: for REINFORCE, AWR and CISPO that is the
method's loss as published (TRL reports the same), for GRO it is eq. 35's objective.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gro_core.objective.batch import GROBatch
from gro_core.objective.components import _resolve
from gro_core.objective.config import GROConfig


def policy_value(
    cfg: GROConfig,
    batch: GROBatch,
    f_adv: Tensor,
    sign: Tensor,
    dist: Tensor,
    norm: float | Tensor,
) -> Tensor | None:
    """−Agg(f(A)·G(d, s)) with the corrections above; None when the value is the surrogate.

    f_adv and sign are broadcast to d's shape ((B,) or (B, T)); norm is the aggregation's."""
    weight, anchor = cfg.component("weight"), cfg.component("anchor")
    if not (weight.value_impl and anchor.value_terms):
        return None
    terms = -f_adv * _resolve(weight.value_impl)(dist, sign, cfg)
    if terms.dim() == 2:
        # G(0) need not be 0 (PPO's is 1): padding must not count.
        terms = (terms * batch.maskf).sum(dim=1)
    if anchor.value_terms == "chosen":
        seq_sign = sign if sign.dim() == 1 else sign[:, 0]
        terms = torch.where(seq_sign > 0, terms, torch.zeros_like(terms))
    per_token_mean_d = anchor.reads_x or (anchor.is_ratio and not anchor.token_level)
    if cfg.x_token_mean and per_token_mean_d:
        terms = terms * batch.lengths
    if isinstance(norm, Tensor):
        return (norm * terms).sum()
    return terms.sum() * norm
