"""f: the monotone transform of the advantage in w(d) · f(A) · ∇ℓ (records in components.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from gro_core.objective.config import GROConfig


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
