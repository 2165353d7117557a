"""Presets: each published method as the GROConfig fields whose gradient equals the original's.

Each function maps the method's own parameters (named as its paper or TRL names them, with
their defaults) onto components (gro_core.objective.components). A method's record in
gro_core.methods names its preset; `gro_core.methods.get_preset` builds the config. The tests
check every preset's gradient against the method's published loss, written independently.
"""

from __future__ import annotations

from typing import Any


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def rloo(kl_coef: float = 0.05) -> dict[str, Any]:
    """RLOO (TRL, one update per batch): leave-one-out baseline, KL folded into the reward."""
    return dict(
        advantage="rloo",
        kl_coef=kl_coef,
        kl_in_reward=True,
        anchor="none",
        weight="one",
        aggregation="seq_mean",
    )


def remax() -> dict[str, Any]:
    """ReMax: the greedy completion's reward is the baseline."""
    return dict(advantage="remax", anchor="none", weight="one", aggregation="seq_mean")


def grpo(epsilon: float = 0.2, kl_coef: float = 0.04, epsilon_high: float | None = None) -> dict:
    """GRPO (DeepSeekMath; TRL loss_type="grpo"): group-normalised A, PPO clip, k3 in loss."""
    return dict(
        advantage="group_norm",
        adv_scale="group",
        anchor="old",
        weight="clip",
        epsilon_low=epsilon,
        epsilon_high=epsilon if epsilon_high is None else epsilon_high,
        aggregation="seq_mean_token_mean",
        kl_coef=kl_coef,
        kl_in_loss=True,
    )


def reinforce_pp(kl_coef: float = 0.01, epsilon: float = 0.2, baseline: bool = False) -> dict:
    """REINFORCE++ (OpenRLHF): token-level k1 return, batch-whitened, PPO clip, token mean."""
    return dict(
        advantage="reinforce_pp",
        adv_baseline=baseline,
        kl_coef=kl_coef,
        anchor="old",
        weight="clip",
        epsilon_low=epsilon,
        epsilon_high=epsilon,
        aggregation="token_mean",
    )


def dpo(beta: float = 0.1) -> dict[str, Any]:
    """DPO sigmoid loss: −log σ(β(Δ_w − Δ_l)), mean over pairs."""
    _require(beta > 0, f"dpo: beta must be > 0, got {beta}; the usual range is 0.01 to 0.5")
    return dict(
        advantage="raw",
        f_scale=beta,
        anchor="pair",
        x="log_ratio",
        x_token_mean=False,
        weight="sigmoid",
        beta=beta,
        aggregation="group_mean",
    )


def kto(beta: float = 0.1, desirable_weight: float = 1.0, undesirable_weight: float = 1.0) -> dict:
    """KTO (TRL): w_D(1 − σ(β(Δ − z0))) for desirable, w_U(1 − σ(β(z0 − Δ))) otherwise."""
    _require(beta > 0, f"kto: beta must be > 0, got {beta}; the usual range is 0.01 to 0.5")
    return dict(
        advantage="raw",
        f_scale=beta,
        pos_weight=desirable_weight,
        neg_weight=undesirable_weight,
        anchor="kl_point",
        x="log_ratio",
        x_token_mean=False,
        weight="sigmoid_slope",
        beta=beta,
        aggregation="seq_mean",
    )


def cpl(alpha: float = 0.1, lam: float = 0.5) -> dict[str, Any]:
    """CPL: −log σ(α ℓ_w − λ α ℓ_l), mean over pairs; no reference model."""
    _require(alpha > 0, f"cpl: alpha must be > 0, got {alpha}")
    _require(lam > 0, f"cpl: lam must be > 0, got {lam}; CPL's bias toward the chosen is 0.5")
    return dict(
        advantage="raw",
        f_scale=alpha,
        neg_weight=lam,
        anchor="pair",
        x="log_likelihood",
        x_token_mean=False,
        x_neg_scale=lam,
        weight="sigmoid",
        beta=alpha,
        aggregation="group_mean",
    )


def awr(tau: float = 1.0, max_weight: float = 20.0) -> dict[str, Any]:
    """Advantage-weighted maximum likelihood (eq. 33): weights min(exp(A/τ), max_weight)."""
    return dict(
        advantage="group_norm",
        adv_scale="group",
        f="exp",
        tau=tau,
        max_weight=max_weight,
        anchor="none",
        weight="one",
        aggregation="seq_mean",
    )


def gro(beta: float = 1.0) -> dict[str, Any]:
    """GRO (eq. 35): RLOO advantage, sigmoid weight of the per-token-mean log-likelihood's
    distance to the mean of the group's completions on the other side of the baseline."""
    return dict(
        advantage="rloo",
        anchor="opposite",
        x="log_likelihood",
        x_token_mean=True,
        weight="sigmoid",
        beta=beta,
        aggregation="seq_mean",
    )
