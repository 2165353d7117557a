"""w(d, s), s = sign(A): how much a completion's gradient counts given its distance to the
anchor (records in components.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from gro_core.objective.config import GROConfig


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
