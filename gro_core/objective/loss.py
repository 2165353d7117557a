"""The GRO objective: one surrogate loss whose gradient is E[w(d) · f(A) · ∇ℓ].

    L = − Agg( sg(w · f(A)) · logprobs )  (+ kl_coef · Agg(k3) with kl_in_loss)

Every preset in gro_core.objective.presets is a GROConfig for this one function. Everything but the
final multiply is computed under no_grad from a detached view of the batch, so the
gradient is exactly the objective's, and the cost stays within a few O(B·T) passes of a
hand-written loss for the same method (bench/objective.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from gro_core.objective.advantages import (
    STD_EPS,
    batch_quantity,
    moments_mean_var,
    moments_of,
    normalises_over_batch,
)
from gro_core.objective.batch import GROBatch
from gro_core.objective.config import GROConfig
from gro_core.objective.groups import make_groups
from gro_core.objective.output import GROOutput, StatParts, k3, make_output
from gro_core.objective.values import policy_value

__all__ = ["GROOutput", "gro_loss", "gro_moments", "moment_stages"]


def gro_loss(
    cfg: GROConfig,
    *,
    logprobs: Tensor,
    mask: Tensor,
    rewards: Tensor | None = None,
    group_ids: Tensor | None = None,
    old_logprobs: Tensor | None = None,
    ref_logprobs: Tensor | None = None,
    baseline_rewards: Tensor | None = None,
    kl_ref_point: Tensor | float | None = None,
    kl_pairs: tuple[Tensor, Tensor] | None = None,
    moments: Tensor | None = None,
) -> GROOutput:
    """GRO loss for B completions of up to T tokens.

    logprobs (B, T) with grad; mask (B, T) bool or 0/1 marks completion tokens; rewards (B,);
    group_ids (B,) any integers, equal for completions of one prompt (None: each its own
    group); old_logprobs (B, T), None meaning "same as logprobs, detached"; ref_logprobs
    (B, T); baseline_rewards (B,) for ReMax; kl_ref_point () KTO's z0; kl_pairs, when z0 is
    not given, the (M,) sequence log-likelihoods under the policy and the reference of
    mismatched prompt/completion pairs, from which z0 = max(0, mean Δ) as TRL estimates it
    (without either, z0 is estimated on the batch's own pairs); moments, when the batch is
    one micro-batch or one rank's share of a step, the step's `gro_moments` summed over all
    of them (batch-wide statistics are then the step's). Values outside `mask` are
    ignored, even when not finite. bfloat16 and float16 inputs are computed in float32; the
    gradient reaches `logprobs` in its dtype.
    """
    _check_inputs(cfg, logprobs, mask, rewards, old_logprobs, ref_logprobs, baseline_rewards)
    assert rewards is not None
    mask = mask if mask.dtype == torch.bool else mask.bool()
    inputs = _Inputs(
        logprobs, mask, rewards, group_ids, old_logprobs, ref_logprobs, baseline_rewards,
        kl_ref_point, kl_pairs, moments,
    )  # fmt: skip
    out = _gro_loss(cfg, inputs, safe=False)
    if not bool(torch.isfinite(out.loss)):
        # Multiplying by the mask turns a non-finite pad value into NaN; torch.where does
        # not. It is 2-3x slower on CPU, so it runs only when the fast pass went wrong.
        out = _gro_loss(cfg, inputs, safe=True)
    return out


@dataclass(frozen=True)
class _Inputs:
    """gro_loss's arguments as given (mask already bool)."""

    logprobs: Tensor
    mask: Tensor
    rewards: Tensor
    group_ids: Tensor | None
    old_logprobs: Tensor | None
    ref_logprobs: Tensor | None
    baseline_rewards: Tensor | None
    kl_ref_point: Tensor | float | None
    kl_pairs: tuple[Tensor, Tensor] | None
    moments: Tensor | None = None


def moment_stages(cfg: GROConfig) -> int:
    """How many rounds of `gro_moments` a step needs: 0 when nothing in `cfg` is normalised
    over the batch, 2 when adv_normalize whitens advantages that are themselves normalised
    over the batch (the second round needs the first's totals), else 1."""
    return int(normalises_over_batch(cfg)) + int(_whitens_advantages(cfg))


def _whitens_advantages(cfg: GROConfig) -> bool:
    """adv_normalize applies: it whitens sequence-level advantages only."""
    return cfg.adv_normalize and not cfg.component("advantage").token_level


def gro_moments(cfg: GROConfig, *, moments: Tensor | None = None, **inputs: Any) -> Tensor:
    """(2, 3) float64 [n, Σx, Σx²] of what `cfg` normalises over the batch, for this
    micro-batch: row 0 the estimator's values (batch_quantity), row 1 the advantages that
    adv_normalize whitens (computed with the totals of an earlier round, `moments`). Takes
    gro_loss's keyword arguments; `logprobs` is read only as the sampling policy's
    (old_logprobs' stand-in), so a detached or no-grad tensor will do. Sum the result over
    a step's micro-batches and ranks, `moment_stages` times, and pass it to gro_loss."""
    _check_inputs(cfg, inputs["logprobs"], inputs["mask"], inputs.get("rewards"),
                  inputs.get("old_logprobs"), inputs.get("ref_logprobs"),
                  inputs.get("baseline_rewards"))  # fmt: skip
    mask = inputs["mask"]
    fields = {k: inputs.get(k) for k in _Inputs.__dataclass_fields__ if k != "moments"}
    fields["mask"] = mask if mask.dtype == torch.bool else mask.bool()
    with torch.no_grad():
        _, _, batch = _batch(cfg, _Inputs(**fields, moments=moments), safe=True)
        rows = [moments_of(batch_quantity(batch, cfg)), moments_of(None)]
        if _whitens_advantages(cfg):
            rows[1] = moments_of(cfg.component("advantage").function(batch, cfg))
    return torch.stack(rows)


def _gro_loss(cfg: GROConfig, inputs: _Inputs, *, safe: bool) -> GROOutput:
    """L = −Agg(sg(w(d) · f(A)) · log π) (+ kl_coef · Agg(k3) with kl_in_loss, + the NLL
    term with nll_coef), and the method's loss value beside it."""
    lp, seq_lp, batch = _batch(cfg, inputs, safe)  # lp (B, T) and seq_lp (B,) carry the gradient
    with torch.no_grad():
        coefficients, f_adv, sign = _coefficients(cfg, batch)
        adv, dist, weight, coef = coefficients
        norm = cfg.component("aggregation").function(batch, cfg)
        value = policy_value(cfg, batch, f_adv, sign, dist, norm)
    if coef.dim() == 1:
        # Σ_t coef_i · lp_it = coef_i · ℓ_i: the token sum is already there.
        policy_loss = -_aggregate(coef * seq_lp, norm)
    else:
        policy_loss = -_aggregate((coef * lp).sum(dim=1), norm)
    loss = policy_loss
    value = policy_loss.detach() if value is None else value
    kl_loss, token_kl = _kl_term(cfg, batch, lp, seq_lp, norm)
    if kl_loss is not None:
        loss = loss + cfg.kl_coef * kl_loss
        value = value + cfg.kl_coef * kl_loss.detach()
    nll_loss = _nll_term(cfg, batch, seq_lp, adv)
    if nll_loss is not None:
        loss = loss + cfg.nll_coef * nll_loss
        value = value + cfg.nll_coef * nll_loss.detach()
    parts = StatParts(cfg, batch, policy_loss.detach(), _detach(kl_loss), _detach(nll_loss),
                      weight if weight.dim() == 2 else None, _detach(token_kl))  # fmt: skip
    return make_output(batch, loss, value, coefficients, parts)


def _kl_term(
    cfg: GROConfig, batch: GROBatch, lp: Tensor, seq_lp: Tensor, norm: float | Tensor
) -> tuple[Tensor | None, Tensor | None]:
    """Agg(k3(ref, logprobs)) with its gradient, times ρ with kl_bias_correction; and the
    (B, T) k3 it summed (detached later for the diagnostics)."""
    if not (cfg.kl_in_loss and cfg.kl_coef > 0):
        return None, None
    assert batch.ref_logprobs is not None
    # Both sides are zero outside the mask, where k3(0, 0) = 0: no masking needed.
    token_kl = k3(batch.ref_logprobs, lp)
    penalty = token_kl
    if cfg.kl_bias_correction:
        if cfg.anchor == "old_seq":  # the completion's ratio, as its policy term reads it
            log_ratio = seq_lp - batch.seq_old
            log_ratio = log_ratio / batch.lengths if cfg.x_token_mean else log_ratio
            penalty = token_kl * torch.exp(log_ratio).unsqueeze(1)
        else:
            penalty = token_kl * torch.exp(lp - batch.old_logprobs)
    return _aggregate(penalty.sum(dim=1), norm), token_kl


def _nll_term(cfg: GROConfig, batch: GROBatch, seq_lp: Tensor, adv: Tensor) -> Tensor | None:
    """CPO's NLL: −Σ ℓ_i / Σ |y_i| over the chosen (A > 0) completions, with its gradient."""
    if cfg.nll_coef == 0:
        return None
    chosen = (adv if adv.dim() == 1 else adv.sum(dim=1)) > 0
    tokens = (batch.maskf.sum(dim=1) * chosen).sum().clamp(min=1)
    return -(seq_lp * chosen).sum() / tokens


def _aggregate(per_completion: Tensor, norm: float | Tensor) -> Tensor:
    """Σ_i norm_i · v_i, with a scalar normaliser applied once to the sum."""
    if isinstance(norm, Tensor):
        return (norm * per_completion).sum()
    return per_completion.sum() * norm


def _detach(t: Tensor | None) -> Tensor | None:
    return None if t is None else t.detach()


Masked = tuple[Tensor, Tensor]  # (values zeroed outside the mask (B, T), row sums (B,))


def _masked(values: Tensor, mask: Tensor, maskf: Tensor, safe: bool) -> Masked:
    """Zero `values` outside the mask: a product (fast) or torch.where (safe for inf/NaN)."""
    if safe:
        out = torch.where(mask, values, torch.zeros((), dtype=values.dtype, device=values.device))
    else:
        out = values * maskf
    return out, out.sum(dim=1)


def _check_inputs(
    cfg: GROConfig,
    logprobs: Tensor,
    mask: Tensor,
    rewards: Tensor | None,
    old_logprobs: Tensor | None,
    ref_logprobs: Tensor | None,
    baseline_rewards: Tensor | None,
) -> None:
    if logprobs.dim() != 2 or not logprobs.is_floating_point():
        raise ValueError(f"logprobs must be a float tensor (B, T), got {tuple(logprobs.shape)}")
    shape = tuple(logprobs.shape)
    for name, tensor in (("mask", mask), ("old_logprobs", old_logprobs)):
        if tensor is not None and tuple(tensor.shape) != shape:
            raise ValueError(f"{name} must have the shape of logprobs {shape}")
    if rewards is None or tuple(rewards.shape) != shape[:1]:
        raise ValueError(f"rewards must be given, shape ({shape[0]},): one per completion")
    if cfg.needs_reference and ref_logprobs is None:
        raise ValueError(f"{cfg.name}: ref_logprobs is required (the config uses the reference)")
    if ref_logprobs is not None and tuple(ref_logprobs.shape) != shape:
        raise ValueError(f"ref_logprobs must have the shape of logprobs {shape}")
    if cfg.needs_baseline_rewards and baseline_rewards is None:
        raise ValueError(
            f"{cfg.name}: baseline_rewards is required (reward of each prompt's greedy completion)"
        )


def _batch(cfg: GROConfig, inputs: _Inputs, safe: bool) -> tuple[Tensor, Tensor, GROBatch]:
    """The masked log-probs with their gradient, (B, T) and row sums (B,), and the detached
    GROBatch every component reads."""
    dtype = torch.promote_types(inputs.logprobs.dtype, torch.float32)
    mask = inputs.mask
    # bool -> float is a slow elementwise path on CPU (~7x a uint8 -> float copy); a bool
    # tensor's bytes are exactly 0 and 1, so reading them as uint8 is free and exact.
    maskf = mask.view(torch.uint8).to(dtype)
    (lp, seq_lp), old, ref = [
        None if t is None else _masked(t.to(dtype), mask, maskf, safe)
        for t in (inputs.logprobs, inputs.old_logprobs, inputs.ref_logprobs)
    ]
    logprobs, seq = lp.detach(), seq_lp.detach()
    old_logprobs, seq_old = (logprobs, seq) if old is None else old
    ref_logprobs, seq_ref = (None, None) if ref is None else ref
    groups = make_groups(inputs.group_ids, logprobs.shape[0], logprobs.device)
    _check_group_sizes(cfg, groups.counts)
    z0 = inputs.kl_ref_point
    z0 = None if z0 is None else torch.as_tensor(z0, dtype=dtype).to(logprobs.device)
    baseline = inputs.baseline_rewards
    batch = GROBatch(
        logprobs=logprobs,
        old_logprobs=old_logprobs,
        ref_logprobs=ref_logprobs,
        mask=mask,
        maskf=maskf,
        seq_logprobs=seq,
        seq_old=seq_old,
        seq_ref=seq_ref,
        raw_rewards=inputs.rewards.to(dtype),
        reward_kl_coef=cfg.kl_coef if cfg.kl_in_reward else 0.0,
        baseline_rewards=None if baseline is None else baseline.to(dtype),
        kl_ref_point=z0,
        kl_pairs=_kl_pairs(inputs.kl_pairs, dtype),
        groups=groups,
        moments=None if inputs.moments is None else inputs.moments.double().cpu(),
    )
    return lp, seq_lp, batch


def _kl_pairs(pairs: tuple[Tensor, Tensor] | None, dtype: torch.dtype) -> tuple | None:
    if pairs is None:
        return None
    policy, ref = pairs
    return policy.detach().to(dtype), ref.detach().to(dtype)


def _check_group_sizes(cfg: GROConfig, counts: Tensor) -> None:
    """The group sizes the config's components need (their records' min_group, exact_group)."""
    if cfg.min_group <= 1 and cfg.exact_group is None:
        return
    smallest, largest = (int(v) for v in counts.aminmax())
    for c in cfg.components:
        if smallest < c.min_group:
            raise ValueError(
                f"{cfg.name}: {c.kind} {c.name!r} needs at least {c.min_group} completions per "
                f"group (prompt); got a group of {smallest}. Use num_generations >= "
                f"{c.min_group}, or advantage='raw' for unpaired data"
            )
        if c.exact_group is not None and (smallest, largest) != (c.exact_group, c.exact_group):
            raise ValueError(
                f"{cfg.name}: {c.kind} {c.name!r} needs groups of exactly {c.exact_group} "
                f"(chosen, rejected); got sizes {sorted(set(counts.tolist()))}"
            )


def _whitened(adv: Tensor, batch: GROBatch) -> Tensor:
    """adv_normalize: (A − mean)/(std + 1e-4), over the step when its moments are given."""
    if batch.moments is not None:
        n = float(batch.moments[1, 0])
        mean, var = (t.to(adv) for t in moments_mean_var(batch.moments[1], bessel=True))
    else:
        n, mean = adv.numel(), adv.mean()
        var = adv.var() if n > 1 else adv.new_tensor(0.0)
    if n <= 1:
        return adv
    return (adv - mean) / (var.sqrt() + STD_EPS)


def _coefficients(
    cfg: GROConfig, batch: GROBatch
) -> tuple[tuple[Tensor, Tensor, Tensor, Tensor], Tensor, Tensor]:
    """(A, d, w, w · f(A)), each (B,) or (B, T); and f(A) and sign(A) broadcast to d's
    shape, which the loss value reads."""
    adv = cfg.component("advantage").function(batch, cfg)
    if cfg.adv_normalize and adv.dim() == 1:
        adv = _whitened(adv, batch)
    sign = torch.sign(adv)
    # Sequence-level anchors see a sequence-level sign; the config refuses token-level
    # advantages with them, so the zeros below are never read.
    seq_sign = sign if adv.dim() == 1 else torch.zeros_like(batch.seq_logprobs)
    dist = cfg.component("anchor").function(batch, seq_sign, cfg)
    adv_b = adv
    if dist.dim() > adv.dim():  # per-token d, per-completion A: broadcast A over tokens
        adv_b, sign = adv.unsqueeze(1), sign.unsqueeze(1)
    weight = cfg.component("weight").function(dist, sign, cfg)
    f_adv = cfg.component("f").function(adv_b, cfg)
    return (adv, dist, weight, weight * f_adv), f_adv, sign
