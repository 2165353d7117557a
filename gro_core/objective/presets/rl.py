"""Online presets: REINFORCE-style methods on rollouts (RLOO, ReMax, the GRPO family,
REINFORCE++). Notation as in gro_core.objective.presets; A_i is the group-normalised reward
`(r_i − mean_g r)/(std_g r + 1e-4)` where a docstring says "GRPO's advantage"."""

from __future__ import annotations

from typing import Any

from gro_core.objective.presets.common import adv_scale, require


def rloo(
    kl_coef: float = 0.05,
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
    normalize_advantages: bool = False,
) -> dict[str, Any]:
    """RLOO (TRL): leave-one-out baseline, KL folded into the reward, the completion's
    importance ratio clipped as PPO's.

    Loss: `L = −(1/N) Σ_i min(ρ_i·A_i, clip(ρ_i, 1−ε_low, 1+ε_high)·A_i)`, `ρ_i =
    exp(ℓ_i − ℓ^old_i)` the completion's ratio (1 on the first update of a batch),
    `A_i = r̃_i − (1/(G−1)) Σ_{j≠i} r̃_j` over the G completions of i's prompt,
    `r̃_i = r_i − kl_coef·(ℓ^old_i − ℓ^ref_i)`; with normalize_advantages, A is whitened over
    the batch, `(A − mean)/(std + 1e-4)`.

    Gradient: `−∇L = (1/N) Σ_i w_i·A_i·∇ℓ_i` with w = ρ_i, or 0 where the clipped branch is
    the smaller: anchor old_seq (d = ℓ − ℓ^old) and w = clip, at the level of completions.
    """
    return dict(
        advantage="rloo",
        adv_normalize=normalize_advantages,
        kl_coef=kl_coef,
        kl_in_reward=True,
        anchor="old_seq",
        x_token_mean=False,
        weight="clip",
        epsilon_low=epsilon,
        epsilon_high=epsilon if epsilon_high is None else epsilon_high,
        aggregation="seq_mean",
    )


def remax() -> dict[str, Any]:
    """ReMax: the greedy completion's reward is the baseline.

    Loss: `L = −(1/N) Σ_i (r_i − r(ŷ_i))·ℓ_i`, ŷ_i the greedy completion of i's prompt.

    Gradient: `−∇L = (1/N) Σ_i (r_i − r(ŷ_i))·∇ℓ_i`: f = identity, w = 1.
    """
    return dict(advantage="remax", anchor="none", weight="one", aggregation="seq_mean")


def _clipped(
    method: str,
    *,
    beta: float,
    epsilon: float,
    epsilon_high: float | None,
    scale_rewards: str | bool,
    use_bias_correction_kl: bool,
    aggregation: str,
    **fields: Any,
) -> dict[str, Any]:
    """The GRPO family's shared fields: TRL's GRPOConfig names mapped onto GROConfig's."""
    require(beta >= 0, f"{method}: beta must be >= 0, got {beta}; 0 turns the KL term off")
    return (
        dict(
            advantage="group_norm",
            adv_scale=adv_scale(method, scale_rewards),
            anchor="old",
            weight="clip",
            epsilon_low=epsilon,
            epsilon_high=epsilon if epsilon_high is None else epsilon_high,
            aggregation=aggregation,
            kl_coef=beta,
            kl_in_loss=True,
            kl_bias_correction=use_bias_correction_kl,
        )
        | fields
    )


def grpo(
    epsilon: float = 0.2,
    kl_coef: float = 0.04,
    epsilon_high: float | None = None,
    delta: float | None = None,
    use_bias_correction_kl: bool = False,
) -> dict[str, Any]:
    """GRPO (DeepSeekMath; TRL loss_type="grpo"): group-normalised A, PPO clip, k3 in loss.

    Loss: `L = (1/N) Σ_i (1/|y_i|) Σ_t [−min(ρ_it·A_i, clip(ρ_it, 1−ε_low, 1+ε_high)·A_i)
    + kl_coef·k3_it]`, `A_i = (r_i − mean_g r)/(std_g r + 1e-4)` over i's group,
    `k3 = exp(log π_ref − log π_θ) − (log π_ref − log π_θ) − 1` per token (times ρ_it with
    use_bias_correction_kl); with δ (two-sided clipping) ρ_it in the first branch is
    min(ρ_it, δ).

    Gradient: Where the unclipped branch is the smaller, its gradient is `ρ_it·A_i·∇log π_it`;
    where the clipped branch is (A > 0 and ρ > 1+ε_high, or A < 0 and ρ < 1−ε_low, or ρ > δ),
    it is a constant with gradient 0. That is w = clip (ρ, or 0) with anchor old (d = log ρ)
    and f = identity; the token mean of each completion, then the mean over completions, is
    seq_mean_token_mean; the k3 term is added to the loss as it is (kl_in_loss).
    """
    return _clipped(
        "grpo",
        beta=kl_coef,
        epsilon=epsilon,
        epsilon_high=epsilon_high,
        scale_rewards="group",
        use_bias_correction_kl=use_bias_correction_kl,
        aggregation="seq_mean_token_mean",
        delta=delta,
    )


def dapo(
    beta: float = 0.0,
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
    delta: float | None = None,
    scale_rewards: str = "group",
    use_bias_correction_kl: bool = True,
) -> dict[str, Any]:
    """DAPO's token-level loss (TRL's default loss_type="dapo"): GRPO's clipped terms,
    averaged over every completion token of the batch.

    Loss: `L = (1/Σ_i |y_i|) Σ_i Σ_t [−min(ρ_it·A_i, clip(ρ_it, 1−ε_low, 1+ε_high)·A_i)
    + β·k3_it·ρ_it]` with GRPO's advantage (k3 without ρ_it when use_bias_correction_kl is
    off); DAPO recommends epsilon_high = 0.28 (clip-higher).

    Gradient: GRPO's, per token (w = clip, anchor old), normalised by the batch's token
    count (token_mean): a long completion counts per token, not per completion.
    """
    return _clipped(
        "dapo",
        beta=beta,
        epsilon=epsilon,
        epsilon_high=epsilon_high,
        scale_rewards=scale_rewards,
        use_bias_correction_kl=use_bias_correction_kl,
        aggregation="token_mean",
        delta=delta,
    )


def bnpo(
    beta: float = 0.0,
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
    delta: float | None = None,
    scale_rewards: str = "group",
    use_bias_correction_kl: bool = True,
) -> dict[str, Any]:
    """BNPO (TRL loss_type="bnpo"): GRPO's clipped terms averaged over the tokens of the
    (local) batch.

    Loss: `L = (1/Σ_i |y_i|) Σ_i Σ_t [−min(ρ_it·A_i, clip(ρ_it)·A_i) + β·k3_it·ρ_it]`, the
    sum over the batch's tokens. TRL averages it per micro-batch; gro weights micro-batches
    by their tokens, so across a split batch bnpo is dapo's loss.

    Gradient: GRPO's, per token, over the batch's token count (token_mean).
    """
    return _clipped(
        "bnpo",
        beta=beta,
        epsilon=epsilon,
        epsilon_high=epsilon_high,
        scale_rewards=scale_rewards,
        use_bias_correction_kl=use_bias_correction_kl,
        aggregation="token_mean",
        delta=delta,
    )


def dr_grpo(
    beta: float = 0.0,
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
    delta: float | None = None,
    scale_rewards: str = "none",
    use_bias_correction_kl: bool = True,
    max_completion_length: int = 512,
) -> dict[str, Any]:
    """Dr. GRPO (TRL loss_type="dr_grpo"): GRPO without its length and std biases.

    Loss: `L = (1/(N·L_max)) Σ_i Σ_t [−min(ρ_it·A_i, clip(ρ_it)·A_i) + β·k3_it·ρ_it]`, L_max
    = max_completion_length, `A_i = r_i − mean_g r` (scale_rewards "none", the paper's
    choice; TRL's config defaults to "group").

    Gradient: GRPO's, per token, over the constant N·L_max (seq_sum_norm), with the
    advantage not divided by the group's std (adv_scale none).
    """
    return _clipped(
        "dr_grpo",
        beta=beta,
        epsilon=epsilon,
        epsilon_high=epsilon_high,
        scale_rewards=scale_rewards,
        use_bias_correction_kl=use_bias_correction_kl,
        aggregation="seq_sum_norm",
        max_len=max_completion_length,
        delta=delta,
    )


def gspo(
    beta: float = 0.0,
    epsilon: float = 3e-4,
    epsilon_high: float = 4e-4,
    scale_rewards: str = "group",
    use_bias_correction_kl: bool = True,
) -> dict[str, Any]:
    """GSPO (TRL importance_sampling_level="sequence", loss_type="grpo"): one importance
    ratio per completion, the geometric mean of its tokens' ratios.

    Loss: `L = (1/N) Σ_i [−min(s_i·A_i, clip(s_i, 1−ε_low, 1+ε_high)·A_i) + β·mean_t k3_it·s_i]`,
    `s_i = exp((ℓ_i − ℓ^old_i)/|y_i|)`, GRPO's advantage; ε = 3e-4 / 4e-4 as the GSPO paper.

    Gradient: `∇s_i = s_i·∇ℓ_i/|y_i|`, so `−∇L = (1/N) Σ_i w_i·A_i·∇ℓ_i/|y_i|` with w = s_i or
    0 where clipped: anchor old_seq with the per-token mean (x_token_mean), w = clip, and
    seq_mean_token_mean supplies the 1/(N·|y_i|).
    """
    return _clipped(
        "gspo",
        beta=beta,
        epsilon=epsilon,
        epsilon_high=epsilon_high,
        scale_rewards=scale_rewards,
        use_bias_correction_kl=use_bias_correction_kl,
        aggregation="seq_mean_token_mean",
        anchor="old_seq",
        x_token_mean=True,
    )


def cispo(
    beta: float = 0.0,
    epsilon_high: float = 5.0,
    scale_rewards: str = "group",
    use_bias_correction_kl: bool = True,
) -> dict[str, Any]:
    """CISPO (MiniMax-M1; TRL loss_type="cispo"): the importance weight clipped and held
    constant, so no token loses its gradient.

    Loss: `L = −(1/Σ_i |y_i|) Σ_i Σ_t sg(min(ρ_it, ε_max))·A_i·log π_it (+ β·k3_it·ρ_it)`,
    GRPO's advantage, ε_max = epsilon_high (5.0, TRL's recommended value; its config's
    default is epsilon, 0.2).

    Gradient: `−∇L = (1/Σ|y|) Σ_i Σ_t min(ρ_it, ε_max)·A_i·∇log π_it`: w = cispo on
    anchor old, token_mean. The loss TRL reports is this surrogate itself.
    """
    return _clipped(
        "cispo",
        beta=beta,
        epsilon=0.2,
        epsilon_high=epsilon_high,
        scale_rewards=scale_rewards,
        use_bias_correction_kl=use_bias_correction_kl,
        aggregation="token_mean",
        weight="cispo",
    )


def sapo(
    beta: float = 0.0,
    sapo_temperature_pos: float = 1.0,
    sapo_temperature_neg: float = 1.05,
    scale_rewards: str = "group",
    use_bias_correction_kl: bool = True,
) -> dict[str, Any]:
    """SAPO (TRL loss_type="sapo"): a smooth gate of the ratio in place of the hard clip.

    Loss: `L = (1/N) Σ_i (1/|y_i|) Σ_t [−(4/τ)·σ(τ·(ρ_it − 1))·A_i + β·k3_it·ρ_it]`, τ =
    τ_pos for A > 0, τ_neg otherwise, GRPO's advantage.

    Gradient: `∂/∂log π_it` of the gate is `4·σ(τ(ρ−1))·σ(−τ(ρ−1))·ρ`: w = sapo on anchor
    old, seq_mean_token_mean; at ρ = 1 it is 1 (the policy gradient), and it decays
    smoothly as the ratio leaves 1.
    """
    return _clipped(
        "sapo",
        beta=beta,
        epsilon=0.2,
        epsilon_high=None,
        scale_rewards=scale_rewards,
        use_bias_correction_kl=use_bias_correction_kl,
        aggregation="seq_mean_token_mean",
        weight="sapo",
        sapo_temperature_pos=sapo_temperature_pos,
        sapo_temperature_neg=sapo_temperature_neg,
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
