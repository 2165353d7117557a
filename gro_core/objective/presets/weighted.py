"""Weighted-likelihood presets: AWR and GRO. Notation as in gro_core.objective.presets."""

from __future__ import annotations

from typing import Any


def gro(beta: float = 1.0) -> dict[str, Any]:
    """GRO (eq. 35): RLOO advantage, sigmoid weight of the per-token-mean log-likelihood's
    distance to the mean of the group's completions on the other side of the baseline.

    Loss: `L = −(1/N) Σ_i sg(σ(−β·s_i·d_i))·A_i·ℓ_i`, A_i the leave-one-out advantage,
    `d_i = ℓ̄_i − mean{ℓ̄_j : j in i's group, s_j = −s_i}` with `ℓ̄ = ℓ/|y|`, and d_i = 0 when
    no member of the group is on the other side.

    Gradient: `−∇L = (1/N) Σ_i σ(−β·s_i·d_i)·A_i·∇ℓ_i`, the paper's GRO gradient with these
    choices: a completion already well separated from the other side counts less.
    """
    return dict(
        advantage="rloo",
        anchor="opposite",
        x="log_likelihood",
        x_token_mean=True,
        weight="sigmoid",
        beta=beta,
        aggregation="seq_mean",
    )


def awr(tau: float = 1.0, max_weight: float = 20.0) -> dict[str, Any]:
    """Advantage-weighted maximum likelihood (eq. 33): weights min(exp(A/τ), max_weight).

    Loss: `L = −(1/N) Σ_i min(exp(A_i/τ), max_weight)·ℓ_i`, A_i the group-normalised reward
    (GRPO's advantage) in place of a learned value function.

    Gradient: `−∇L = (1/N) Σ_i min(exp(A_i/τ), max_weight)·∇ℓ_i`: f = exp, w = 1.
    """
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
