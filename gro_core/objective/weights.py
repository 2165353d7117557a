"""w(d, s), s = sign(A): how much a completion's gradient counts given its distance to the
anchor (records in components.py), and each weight's value G(d, s), ∂G/∂d = w, from which
gro_loss reports the method's own loss −Agg(f(A)·G). The importance-ratio weights (PPO's
clip, CISPO, SAPO) are in ratio_weights.py.

The weights here depend on the signed distance u = s·d − margin. Writing G = s·Ψ(u) with
Ψ' = w gives ∂G/∂d = w, and f(A)·G = |f(A)|·Ψ(u): one Ψ per weight serves both signs.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

if TYPE_CHECKING:
    from gro_core.objective.config import GROConfig


def _u(d: Tensor, sign: Tensor, cfg: GROConfig) -> Tensor:
    """u = s·d − margin: how far past its target margin a completion is."""
    u = sign * d
    return u - cfg.margin if cfg.margin else u


def weight_one(d: Tensor, sign: Tensor, cfg: GROConfig) -> Tensor:
    """w = 1."""
    return torch.ones_like(d)


def weight_sigmoid(d: Tensor, sign: Tensor, cfg: GROConfig) -> Tensor:
    """w = (1−ε)·σ(−β·u) − ε·σ(β·u), u = s·d − margin, ε the label smoothing: large while a
    completion is not yet separated from its anchor (DPO, SimPO's margin, cDPO's ε)."""
    u = _u(d, sign, cfg)
    w = torch.sigmoid(-cfg.beta * u)
    ls = cfg.label_smoothing
    return w if not ls else (1 - ls) * w - ls * torch.sigmoid(cfg.beta * u)


def value_sigmoid(d: Tensor, sign: Tensor, cfg: GROConfig) -> Tensor:
    """Ψ = ((1−ε)·log σ(β·u) + ε·log σ(−β·u))/β."""
    u = cfg.beta * _u(d, sign, cfg)
    psi = F.logsigmoid(u)
    ls = cfg.label_smoothing
    psi = psi if not ls else (1 - ls) * psi + ls * F.logsigmoid(-u)
    return sign * psi / cfg.beta


def weight_robust(d: Tensor, sign: Tensor, cfg: GROConfig) -> Tensor:
    """w = ((1−ε)·σ(−β·u) + ε·σ(β·u))/(1−2ε): robust DPO's unbiased loss under labels
    flipped with probability ε."""
    u = cfg.beta * _u(d, sign, cfg)
    ls = cfg.label_smoothing
    return ((1 - ls) * torch.sigmoid(-u) + ls * torch.sigmoid(u)) / (1 - 2 * ls)


def value_robust(d: Tensor, sign: Tensor, cfg: GROConfig) -> Tensor:
    """Ψ = ((1−ε)·log σ(β·u) − ε·log σ(−β·u))/(β·(1−2ε))."""
    u = cfg.beta * _u(d, sign, cfg)
    ls = cfg.label_smoothing
    psi = ((1 - ls) * F.logsigmoid(u) - ls * F.logsigmoid(-u)) / (1 - 2 * ls)
    return sign * psi / cfg.beta


def weight_sigmoid_slope(d: Tensor, sign: Tensor, cfg: GROConfig) -> Tensor:
    """w = σ(β·u)·σ(−β·u): KTO's value-function slope (and APO's)."""
    z = cfg.beta * _u(d, sign, cfg)
    return torch.sigmoid(z) * torch.sigmoid(-z)


def value_sigmoid_slope(d: Tensor, sign: Tensor, cfg: GROConfig) -> Tensor:
    """Ψ = (σ(β·u) − 1)/β, so the loss term is 1 − σ(β·u) (KTO's)."""
    z = cfg.beta * _u(d, sign, cfg)
    return sign * (torch.sigmoid(z) - 1) / cfg.beta


def weight_linear(d: Tensor, sign: Tensor, cfg: GROConfig) -> Tensor:
    """w = −2·u = 2·(margin − s·d): the slope of a squared loss (IPO, SPPO); negative past
    the margin, where the gradient pulls the completion back."""
    return -2 * _u(d, sign, cfg)


def value_linear(d: Tensor, sign: Tensor, cfg: GROConfig) -> Tensor:
    """Ψ = −u², so the loss term is (s·d − margin)²."""
    return -sign * _u(d, sign, cfg).square()


def weight_step(d: Tensor, sign: Tensor, cfg: GROConfig) -> Tensor:
    """w = 1 while u < 0 (short of the margin), else 0: the hinge loss's slope."""
    return (_u(d, sign, cfg) < 0).to(d.dtype)


def value_step(d: Tensor, sign: Tensor, cfg: GROConfig) -> Tensor:
    """Ψ = min(u, 0), so the loss term is relu(margin − s·d)·f."""
    return sign * _u(d, sign, cfg).clamp(max=0)


def weight_nca(d: Tensor, sign: Tensor, cfg: GROConfig) -> Tensor:
    """NCA: w = σ(−β·u) − ½·σ(β·u) for A > 0, ½·σ(−β·u) for A < 0 (one weight per side)."""
    z = cfg.beta * _u(d, sign, cfg)
    return torch.where(
        sign > 0, torch.sigmoid(-z) - 0.5 * torch.sigmoid(z), 0.5 * torch.sigmoid(-z)
    )


def value_nca(d: Tensor, sign: Tensor, cfg: GROConfig) -> Tensor:
    """Ψ = (log σ(β·u) + ½·log σ(−β·u))/β for A > 0, ½·log σ(β·u)/β for A < 0."""
    z = cfg.beta * _u(d, sign, cfg)
    pos = F.logsigmoid(z) + 0.5 * F.logsigmoid(-z)
    return sign * torch.where(sign > 0, pos, 0.5 * F.logsigmoid(z)) / cfg.beta


def _exo_log_odds(cfg: GROConfig) -> float:
    ls = cfg.label_smoothing
    return math.log1p(-ls) - math.log(ls)


def weight_exo(d: Tensor, sign: Tensor, cfg: GROConfig) -> Tensor:
    """EXO: w = σ(β·u)·σ(−β·u)·(log((1−ε)/ε) − β·u), the slope of KL(p_θ ‖ [1−ε, ε]) over
    the pair; negative once the model is surer than 1−ε."""
    z = cfg.beta * _u(d, sign, cfg)
    return torch.sigmoid(z) * torch.sigmoid(-z) * (_exo_log_odds(cfg) - z)


def value_exo(d: Tensor, sign: Tensor, cfg: GROConfig) -> Tensor:
    """Ψ = −KL([σ(β·u), σ(−β·u)] ‖ [1−ε, ε])/β."""
    z = cfg.beta * _u(d, sign, cfg)
    ls = cfg.label_smoothing
    kl = torch.sigmoid(z) * (F.logsigmoid(z) - math.log1p(-ls))
    kl = kl + torch.sigmoid(-z) * (F.logsigmoid(-z) - math.log(ls))
    return -sign * kl / cfg.beta


def _discopop_parts(z: Tensor, tau: float) -> tuple[Tensor, Tensor, Tensor]:
    """DiscoPOP's logistic part, exponential part and their mixing gate at z = β·u."""
    return -F.logsigmoid(z), torch.exp(-z), torch.sigmoid(z / tau)


def weight_discopop(d: Tensor, sign: Tensor, cfg: GROConfig) -> Tensor:
    """DiscoPOP: w = −ℓ'(β·u), ℓ(z) = −log σ(z)·(1 − g) + e^{−z}·g with g = σ(z/τ): the slope
    of the log-ratio-modulated blend of the logistic and exponential losses."""
    z = cfg.beta * _u(d, sign, cfg)
    logistic, exponential, gate = _discopop_parts(z, cfg.discopop_tau)
    slope = -torch.sigmoid(-z) * (1 - gate) - exponential * gate
    slope = slope + (exponential - logistic) * gate * (1 - gate) / cfg.discopop_tau
    return -slope


def value_discopop(d: Tensor, sign: Tensor, cfg: GROConfig) -> Tensor:
    """Ψ = −ℓ(β·u)/β."""
    z = cfg.beta * _u(d, sign, cfg)
    logistic, exponential, gate = _discopop_parts(z, cfg.discopop_tau)
    return -sign * (logistic * (1 - gate) + exponential * gate) / cfg.beta
