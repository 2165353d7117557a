"""Weights of the importance ratio ρ = exp(d), d = log π_θ/π_old (anchors old and old_seq),
and their values G(d, s) with ∂G/∂d = w (records in components.py). The method's loss per
token (or completion) is −f(A)·G."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from gro_core.objective.config import GROConfig


def _clip_parts(d: Tensor, cfg: GROConfig) -> tuple[Tensor, Tensor, Tensor]:
    """ρ, min(ρ, δ) (two-sided clipping; δ = ∞ when off) and clip(ρ, 1−ε_lo, 1+ε_hi)."""
    ratio = torch.exp(d)
    capped = ratio if cfg.delta is None else ratio.clamp(max=cfg.delta)
    return ratio, capped, ratio.clamp(1 - cfg.epsilon_low, 1 + cfg.epsilon_high)


def weight_clip(d: Tensor, sign: Tensor, cfg: GROConfig) -> Tensor:
    """PPO clipping in gradient form: w = ρ, zeroed where the clipped branch of the min wins
    (A > 0 and ρ > 1 + ε_hi, or A < 0 and ρ < 1 − ε_lo), whose gradient is zero; with δ
    (two-sided clipping, INTELLECT-2) also where ρ > δ."""
    ratio = torch.exp(d)
    clipped_hi = (sign > 0) & (ratio > 1 + cfg.epsilon_high)
    clipped_lo = (sign < 0) & (ratio < 1 - cfg.epsilon_low)
    clipped = clipped_hi | clipped_lo
    if cfg.delta is not None:
        clipped = clipped | (ratio > cfg.delta)
    return torch.where(clipped, torch.zeros_like(ratio), ratio)


def value_clip(d: Tensor, sign: Tensor, cfg: GROConfig) -> Tensor:
    """G = min(min(ρ, δ), clip(ρ)) for A > 0, max(·, ·) for A < 0: −A·G is PPO's
    −min(ρ·A, clip(ρ)·A)."""
    _, capped, clipped = _clip_parts(d, cfg)
    return torch.where(sign > 0, torch.minimum(capped, clipped), torch.maximum(capped, clipped))


def weight_cispo(d: Tensor, sign: Tensor, cfg: GROConfig) -> Tensor:
    """CISPO: w = min(ρ, ε_high), the importance weight clipped and held constant (its
    stop-gradient), so every token keeps a gradient."""
    return torch.exp(d).clamp(max=cfg.epsilon_high)


def _sapo_gate(d: Tensor, sign: Tensor, cfg: GROConfig) -> tuple[Tensor, Tensor]:
    """SAPO's temperature τ (τ_pos for A > 0, τ_neg otherwise) and σ(τ·(ρ − 1))."""
    pos, neg = d.new_tensor(cfg.sapo_temperature_pos), d.new_tensor(cfg.sapo_temperature_neg)
    tau = torch.where(sign > 0, pos, neg)
    return tau, torch.sigmoid(tau * (torch.exp(d) - 1))


def weight_sapo(d: Tensor, sign: Tensor, cfg: GROConfig) -> Tensor:
    """SAPO: w = 4·σ(τ(ρ−1))·σ(−τ(ρ−1))·ρ, a soft gate in place of the hard clip: 1 at
    ρ = 1, decaying smoothly as the ratio leaves 1 (τ_pos for A > 0, τ_neg otherwise)."""
    _, gate = _sapo_gate(d, sign, cfg)
    return 4 * gate * (1 - gate) * torch.exp(d)


def value_sapo(d: Tensor, sign: Tensor, cfg: GROConfig) -> Tensor:
    """G = σ(τ(ρ − 1))·4/τ."""
    tau, gate = _sapo_gate(d, sign, cfg)
    return gate * 4 / tau
