"""Presets: each published method as the GROConfig fields whose gradient equals the original's.

Each function maps the method's own parameters (named as its paper or TRL names them, with
their defaults) onto components (gro_core.objective.components). A method's record in
gro_core.methods names its preset; `gro_core.methods.get_preset` builds the config. The tests
check every preset's gradient against the method's published loss, written independently.

Each docstring states the method's loss (`Loss:`) and why the preset's components give its
gradient (`Gradient:`), in the notation of docs/objective.md, which is generated from them:
ℓ_i the log-likelihood of completion i, Δ_i = ℓ_i − ℓ^ref_i, s_i = sign(A_i), ⁺/⁻ the
chosen/rejected member of a pair, ρ the per-token importance ratio π_θ/π_old.
"""

from __future__ import annotations

from typing import Any


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def rloo(kl_coef: float = 0.05) -> dict[str, Any]:
    """RLOO (TRL, one update per batch): leave-one-out baseline, KL folded into the reward.

    Loss: `L = −(1/N) Σ_i A_i·ℓ_i`, `A_i = r̃_i − (1/(G−1)) Σ_{j≠i} r̃_j` over the G completions
    of i's prompt, `r̃_i = r_i − kl_coef·(ℓ^old_i − ℓ^ref_i)`.

    Gradient: `−∇L = (1/N) Σ_i A_i·∇ℓ_i`, A computed without gradient: f = identity, w = 1.
    """
    return dict(
        advantage="rloo",
        kl_coef=kl_coef,
        kl_in_reward=True,
        anchor="none",
        weight="one",
        aggregation="seq_mean",
    )


def remax() -> dict[str, Any]:
    """ReMax: the greedy completion's reward is the baseline.

    Loss: `L = −(1/N) Σ_i (r_i − r(ŷ_i))·ℓ_i`, ŷ_i the greedy completion of i's prompt.

    Gradient: `−∇L = (1/N) Σ_i (r_i − r(ŷ_i))·∇ℓ_i`: f = identity, w = 1.
    """
    return dict(advantage="remax", anchor="none", weight="one", aggregation="seq_mean")


def grpo(epsilon: float = 0.2, kl_coef: float = 0.04, epsilon_high: float | None = None) -> dict:
    """GRPO (DeepSeekMath; TRL loss_type="grpo"): group-normalised A, PPO clip, k3 in loss.

    Loss: `L = (1/N) Σ_i (1/|y_i|) Σ_t [−min(ρ_it·A_i, clip(ρ_it, 1−ε_low, 1+ε_high)·A_i)
    + kl_coef·k3_it]`, `A_i = (r_i − mean_g r)/(std_g r + 1e-4)` over i's group,
    `k3 = exp(log π_ref − log π_θ) − (log π_ref − log π_θ) − 1` per token.

    Gradient: Where the unclipped branch is the smaller, its gradient is `ρ_it·A_i·∇log π_it`;
    where the clipped branch is (A > 0 and ρ > 1+ε_high, or A < 0 and ρ < 1−ε_low), it is a
    constant with gradient 0. That is w = clip (ρ, or 0) with anchor old (d = log ρ) and
    f = identity; the token mean of each completion, then the mean over completions, is
    seq_mean_token_mean; the k3 term is added to the loss as it is (kl_in_loss).
    """
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
    """REINFORCE++ (OpenRLHF): token-level k1 return, batch-whitened, PPO clip, token mean.

    Loss: `L = (1/Σ_i |y_i|) Σ_i Σ_t −min(ρ_it·A_it, clip(ρ_it, 1−ε, 1+ε)·A_it)`. Each token
    earns `−kl_coef·(log π_old − log π_ref)`, the last one also r_i (minus the group's mean
    reward with `baseline`); `A_it` is the return `Σ_{t'≥t}` of those, whitened over every
    completion token of the batch: `(G − mean)/sqrt(var + 1e-8)`.

    Gradient: As GRPO's, per token: w = clip (ρ, or 0), f = identity on the token-level A,
    normalised by the batch's token count (token_mean).
    """
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
    """DPO sigmoid loss: −log σ(β(Δ⁺ − Δ⁻)), mean over pairs.

    Loss: `L = −(1/P) Σ_pairs log σ(β·(Δ⁺ − Δ⁻))` over P pairs.

    Gradient: `−∇L = (1/P) Σ_pairs β·σ(−β·(Δ⁺ − Δ⁻))·(∇ℓ⁺ − ∇ℓ⁻)`. With A = ±1, f(A) = β·A,
    x = Δ and the pair's other member as anchor (d⁺ = Δ⁺ − Δ⁻ = −d⁻), `w = σ(−β·s·d)` is
    `σ(−β·(Δ⁺ − Δ⁻))` for both members; group_mean divides by the number of pairs.
    """
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
    """KTO (TRL): λ_D(1 − σ(β(Δ − z0))) for desirable, λ_U(1 − σ(β(z0 − Δ))) otherwise.

    Loss: `L = (1/N) Σ_i v_i`, `v_i = λ_D·(1 − σ(β·(Δ_i − z0)))` for a desirable example and
    `λ_U·(1 − σ(β·(z0 − Δ_i)))` for an undesirable one. The reference point z0 = max(0, mean Δ)
    has no gradient; the trainer measures it on mismatched prompt/completion pairs of the
    batch (as TRL does), gro_loss on the batch itself when it is not given.

    Gradient: `−∇v_i = λ_i·β·s_i·σ(β·s_i·d_i)·σ(−β·s_i·d_i)·∇ℓ_i` with `d_i = Δ_i − z0`,
    λ_i = λ_D and s_i = +1 for a desirable example, λ_U and −1 for an undesirable one: A = ±1,
    f(A) = β·A·λ_i (pos_weight, neg_weight), anchor kl_point, w = sigmoid_slope.
    """
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
    """CPL: −log σ(α ℓ⁺ − λ α ℓ⁻), mean over pairs; no reference model.

    Loss: `L = −(1/P) Σ_pairs log σ(α·ℓ⁺ − λ·α·ℓ⁻)` over P pairs.

    Gradient: `−∇L = (1/P) Σ_pairs σ(−(α·ℓ⁺ − λ·α·ℓ⁻))·(α·∇ℓ⁺ − λ·α·∇ℓ⁻)`. With A = ±1,
    f(A) = α·A (times λ on the rejected), x = ℓ (the rejected's scaled by λ) and the pair's
    other member as anchor, `d⁺ = ℓ⁺ − λ·ℓ⁻ = −d⁻`, so `w = σ(−α·s·d)` is
    `σ(−(α·ℓ⁺ − λ·α·ℓ⁻))` for both members; group_mean divides by the number of pairs.
    """
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
