"""Preference presets: DPO and its TRL loss types, KTO, CPO, SimPO, CPL.

The DPO family differs only in w: its gradient is g(u)·(∇ℓ⁺ − ∇ℓ⁻) for a pair anchor (or
g±(u_i)·∇ℓ_i per member for anchor zero), u = s·d − margin, and g is the weight. Notation
as in gro_core.objective.presets.
"""

from __future__ import annotations

from typing import Any

from gro_core.objective.presets.common import require as _require


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


def _beta(method: str, beta: float) -> None:
    _require(beta > 0, f"{method}: beta must be > 0, got {beta}; the usual range is 0.01 to 0.5")


def _pair(scale: float, **fields: Any) -> dict[str, Any]:
    """A pair's margin of log-ratios to the reference, f = β·A, mean over pairs."""
    return (
        dict(
            advantage="raw",
            f_scale=scale,
            anchor="pair",
            x="log_ratio",
            x_token_mean=False,
            beta=scale,
            aggregation="group_mean",
        )
        | fields
    )


def _members(scale: float, **fields: Any) -> dict[str, Any]:
    """Each member's own log-ratio to the reference (anchor zero), summed over the pair."""
    return _pair(scale, anchor="zero") | fields


def sigmoid_norm(beta: float = 0.1) -> dict[str, Any]:
    """Length-normalised DPO (TRL loss_type="sigmoid_norm"): DPO on per-token log-ratios.

    Loss: `L = −(1/P) Σ_pairs log σ(β·(Δ⁺/|y⁺| − Δ⁻/|y⁻|))`.

    Gradient: DPO's weight at the per-token margin, and `∂(Δ_i/|y_i|)/∂ℓ_i = 1/|y_i|`: x =
    log_ratio with x_token_mean, and group_mean_token_mean supplies the 1/(P·|y_i|) (the
    per-token x alone, with group_mean, would be off by |y_i|).
    """
    _beta("sigmoid_norm", beta)
    return _pair(beta, weight="sigmoid", x_token_mean=True, aggregation="group_mean_token_mean")


def ipo(beta: float = 0.1) -> dict[str, Any]:
    """IPO (TRL loss_type="ipo"): the squared distance of the per-token margin to 1/(2β).

    Loss: `L = (1/P) Σ_pairs (Δ⁺/|y⁺| − Δ⁻/|y⁻| − 1/(2β))²` (TRL normalises the log-ratios
    per token, as the IPO authors did).

    Gradient: `−∇L = (1/P) Σ_pairs 2·(1/(2β) − u)·(∇ℓ⁺/|y⁺| − ∇ℓ⁻/|y⁻|)`: w = linear
    (2·(margin − s·d), margin 1/(2β)), f = A, per-token x with group_mean_token_mean.
    """
    _beta("ipo", beta)
    return _pair(
        1.0,
        weight="linear",
        margin=1 / (2 * beta),
        x_token_mean=True,
        aggregation="group_mean_token_mean",
        beta=beta,
    )


def hinge(beta: float = 0.1) -> dict[str, Any]:
    """SLiC's hinge loss (TRL loss_type="hinge"): relu(1 − β·margin).

    Loss: `L = (1/P) Σ_pairs max(0, 1 − β·(Δ⁺ − Δ⁻))`.

    Gradient: `β·(∇ℓ⁺ − ∇ℓ⁻)` while the margin is short of 1/β, else 0: w = step with
    margin 1/β, f = β·A.
    """
    _beta("hinge", beta)
    return _pair(beta, weight="step", margin=1 / beta)


def robust(beta: float = 0.1, label_smoothing: float = 0.0) -> dict[str, Any]:
    """Robust DPO (TRL loss_type="robust"): unbiased under labels flipped with rate ε.

    Loss: `L = (1/P) Σ_pairs [−(1−ε)·log σ(β·m) + ε·log σ(−β·m)]/(1 − 2ε)`, m = Δ⁺ − Δ⁻.

    Gradient: `−∂L/∂m = β·[(1−ε)·σ(−β·m) + ε·σ(β·m)]/(1 − 2ε)`: w = robust, f = β·A.
    """
    _beta("robust", beta)
    return _pair(beta, weight="robust", label_smoothing=label_smoothing)


def exo_pair(beta: float = 0.1, label_smoothing: float = 1e-3) -> dict[str, Any]:
    """EXO (TRL loss_type="exo_pair"): the reverse KL from the model's pair distribution
    [σ(β·m), σ(−β·m)] to the target [1 − ε, ε].

    Loss: `L = (1/P) Σ_pairs [q⁺·(log q⁺ − log(1−ε)) + q⁻·(log q⁻ − log ε)]`, q± = σ(±β·m).
    TRL's label_smoothing defaults to 0, where this loss is infinite; 1e-3 is what TRL's
    documentation suggests.

    Gradient: `−∂L/∂m = β·q⁺·q⁻·(log((1−ε)/ε) − β·m)`: w = exo, f = β·A. It is negative once
    q⁺ > 1 − ε: the gradient pulls an over-confident pair back.
    """
    _beta("exo_pair", beta)
    _require(label_smoothing > 0, "exo_pair: label_smoothing must be > 0; try 1e-3")
    return _pair(beta, weight="exo", label_smoothing=label_smoothing)


def discopop(beta: float = 0.1, discopop_tau: float = 0.05) -> dict[str, Any]:
    """DiscoPOP (TRL loss_type="discopop"): logistic and exponential losses blended by a gate
    of the margin.

    Loss: `L = (1/P) Σ_pairs [−log σ(z)·(1 − g) + e^{−z}·g]`, z = β·(Δ⁺ − Δ⁻), g = σ(z/τ).

    Gradient: `−∂L/∂z` as the weight (discopop), f = β·A: a function of the pair's margin
    alone, so of the GRO form.
    """
    _beta("discopop", beta)
    return _pair(beta, weight="discopop", discopop_tau=discopop_tau)


def aot(beta: float = 0.1, label_smoothing: float = 0.0) -> dict[str, Any]:
    """AOT (TRL loss_type="aot"): DPO on the batch's sorted margins, policy against
    reference, matched by rank.

    Loss: `L = (1/P) Σ_k [−(1−ε)·log σ(β·δ_k) − ε·log σ(−β·δ_k)]`, δ_k = m_(k) − r_(k), m the
    pairs' margins ℓ⁺ − ℓ⁻ under the policy and r under the reference, each sorted.

    Gradient: The pair at rank k gets `β·[(1−ε)σ(−βδ_k) − εσ(βδ_k)]·(∇ℓ⁺ − ∇ℓ⁻)`: anchor
    pair_sorted (d⁺ = m − r_(rank m)), w = sigmoid with label smoothing, f = β·A.
    """
    _beta("aot", beta)
    return _pair(
        beta,
        weight="sigmoid",
        anchor="pair_sorted",
        x="log_likelihood",
        label_smoothing=label_smoothing,
    )


def bco_pair(beta: float = 0.1) -> dict[str, Any]:
    """BCO on pairs (TRL loss_type="bco_pair"): each member classified on its own.

    Loss: `L = (1/P) Σ_pairs [−log σ(β·Δ⁺) − log σ(−β·Δ⁻)]`.

    Gradient: `β·σ(−β·s_i·Δ_i)·s_i·∇ℓ_i` per member: anchor zero, w = sigmoid, f = β·A.
    """
    _beta("bco_pair", beta)
    return _members(beta, weight="sigmoid")


def sppo_hard(beta: float = 0.1) -> dict[str, Any]:
    """SPPO with hard labels (TRL loss_type="sppo_hard"): each log-ratio regressed to ±1/(2β).

    Loss: `L = (1/P) Σ_pairs [(Δ⁺ − 1/(2β))² + (Δ⁻ + 1/(2β))²]`.

    Gradient: `2·(1/(2β) − s_i·Δ_i)·s_i·∇ℓ_i` per member: anchor zero, w = linear with
    margin 1/(2β), f = A.
    """
    _beta("sppo_hard", beta)
    return _members(1.0, weight="linear", margin=1 / (2 * beta), beta=beta)


def nca_pair(beta: float = 0.1) -> dict[str, Any]:
    """NCA on pairs (TRL loss_type="nca_pair"): absolute likelihoods, not just the margin.

    Loss: `L = (1/P) Σ_pairs [−log σ(β·Δ⁺) − ½·log σ(−β·Δ⁺) − ½·log σ(−β·Δ⁻)]`.

    Gradient: `β·[σ(−β·Δ⁺) − ½·σ(β·Δ⁺)]·∇ℓ⁺ − β·½·σ(β·Δ⁻)·∇ℓ⁻`: anchor zero, f = β·A and a
    weight with one function per side (nca), each of the member's own distance.
    """
    _beta("nca_pair", beta)
    return _members(beta, weight="nca")


def apo_zero(beta: float = 0.1) -> dict[str, Any]:
    """APO-zero (TRL loss_type="apo_zero"): raise the chosen, lower the rejected likelihood.

    Loss: `L = (1/P) Σ_pairs [1 − σ(β·Δ⁺) + σ(β·Δ⁻)]`.

    Gradient: `β·σ(β·s_i·Δ_i)·σ(−β·s_i·Δ_i)·s_i·∇ℓ_i` per member: anchor zero, w =
    sigmoid_slope (KTO's, with z0 = 0), f = β·A.
    """
    _beta("apo_zero", beta)
    return _members(beta, weight="sigmoid_slope")


def apo_zero_unpaired(
    beta: float = 0.1, desirable_weight: float = 1.0, undesirable_weight: float = 1.0
) -> dict[str, Any]:
    """APO-zero on unpaired data (TRL KTO loss_type="apo_zero_unpaired").

    Loss: `L = (1/N) Σ_i v_i`, `v_i = λ_D·(1 − σ(β·Δ_i))` for a desirable example,
    `λ_U·σ(β·Δ_i)` for an undesirable one.

    Gradient: KTO's with z0 = 0: anchor zero, w = sigmoid_slope, f = β·A·λ_i, seq_mean.
    """
    _beta("apo_zero_unpaired", beta)
    return _members(
        beta,
        weight="sigmoid_slope",
        pos_weight=desirable_weight,
        neg_weight=undesirable_weight,
        aggregation="seq_mean",
    )


def cpo(beta: float = 0.1, label_smoothing: float = 0.0, cpo_alpha: float = 1.0) -> dict:
    """CPO (TRL CPOTrainer, loss_type="sigmoid"): DPO's loss on log-likelihoods without a
    reference, plus the chosen completions' NLL.

    Loss: `L = (1/P) Σ_pairs [−(1−ε)·log σ(β·(ℓ⁺ − ℓ⁻)) − ε·log σ(−β·(ℓ⁺ − ℓ⁻))]
    + α·NLL⁺`, NLL⁺ = −Σ ℓ⁺ / Σ |y⁺| over the batch's chosen completions.

    Gradient: The first term is DPO's on x = ℓ (w = sigmoid with label smoothing, f = β·A);
    the NLL term's gradient `α·∇ℓ⁺/Σ|y⁺|` is a w = 1 term on the chosen (nll_coef).
    """
    _beta("cpo", beta)
    return _pair(
        beta,
        weight="sigmoid",
        x="log_likelihood",
        label_smoothing=label_smoothing,
        nll_coef=cpo_alpha,
    )


def simpo(
    beta: float = 0.1,
    simpo_gamma: float = 0.5,
    label_smoothing: float = 0.0,
    cpo_alpha: float = 0.0,
) -> dict[str, Any]:
    """SimPO (TRL CPOTrainer, loss_type="simpo"): the per-token log-likelihood margin past γ.

    Loss: `L = (1/P) Σ_pairs [−(1−ε)·log σ(β·(ℓ⁺/|y⁺| − ℓ⁻/|y⁻|) − γ) − ε·log σ(−(…))]
    (+ α·NLL⁺)`; pure SimPO has α = cpo_alpha = 0 (CPOConfig's default is 1: CPO-SimPO).

    Gradient: DPO's weight on the per-token log-likelihood margin shifted by γ/β: x =
    log_likelihood with x_token_mean, w = sigmoid with margin γ/β, f = β·A, and
    group_mean_token_mean for `∂(ℓ_i/|y_i|)/∂ℓ_i = 1/|y_i|`.
    """
    _beta("simpo", beta)
    return _pair(
        beta,
        weight="sigmoid",
        x="log_likelihood",
        x_token_mean=True,
        margin=simpo_gamma / beta,
        label_smoothing=label_smoothing,
        aggregation="group_mean_token_mean",
        nll_coef=cpo_alpha,
    )
