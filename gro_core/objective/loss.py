"""The GRO objective: one surrogate loss whose gradient is E[w(d) · f(A) · ∇ℓ].

    L = − Agg( sg(w · f(A)) · logprobs )  (+ kl_coef · Agg(k3) with kl_in_loss)

Every preset in gro_core.objective.presets is a GROConfig for this one function. Everything but the
final multiply is computed under no_grad from a detached view of the batch, so the
gradient is exactly the objective's, and the cost stays within a few O(B·T) passes of a
hand-written loss for the same method (bench/objective.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor

from gro_core.objective.batch import GROBatch
from gro_core.objective.config import GROConfig
from gro_core.objective.groups import make_groups


@dataclass(eq=False)
class GROOutput:
    """The loss and the per-completion quantities behind it (all but `loss` detached).

    `stats` is computed on first access, so a training step that does not log pays nothing.
    """

    loss: Tensor  # () with grad
    advantages: Tensor  # (B,) A_i; the token mean for token-level advantages
    anchor_distances: Tensor  # (B,) d_i; the token mean of log-ratios for anchor "old"
    weights: Tensor  # (B,) w_i; the token mean for per-token weights
    coefficients: Tensor  # (B,) w·f(A), the effective REINFORCE coefficient
    rewards: Tensor  # (B,) rewards after any KL-in-reward penalty
    token_advantages: Tensor | None  # (B, T) for token-level advantages
    _parts: _StatParts

    @cached_property
    def stats(self) -> dict[str, float]:
        """Scalar diagnostics (namespaced keys), gathered so a GPU syncs once."""
        return _stats(self, self._parts)


@dataclass(frozen=True)
class _StatParts:
    """What the diagnostics need beyond the output's own tensors."""

    cfg: GROConfig
    batch: GROBatch
    policy_loss: Tensor
    kl_loss: Tensor | None
    token_weight: Tensor | None  # (B, T) per-token weights, for the clip fraction
    token_kl_ref: Tensor | None  # (B, T) k3 to the reference, when the loss computed it


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
) -> GROOutput:
    """GRO loss for B completions of up to T tokens.

    logprobs (B, T) with grad; mask (B, T) bool or 0/1 marks completion tokens; rewards (B,);
    group_ids (B,) any integers, equal for completions of one prompt (None: each its own
    group); old_logprobs (B, T), None meaning "same as logprobs, detached"; ref_logprobs
    (B, T); baseline_rewards (B,) for ReMax; kl_ref_point () KTO's z0, None to estimate it
    from the batch. Values outside `mask` are ignored, even when not finite. bfloat16 and
    float16 inputs are computed in float32; the gradient reaches `logprobs` in its dtype.
    """
    _check_inputs(cfg, logprobs, mask, rewards, old_logprobs, ref_logprobs, baseline_rewards)
    assert rewards is not None
    mask = mask if mask.dtype == torch.bool else mask.bool()
    inputs = _Inputs(
        logprobs, mask, rewards, group_ids, old_logprobs, ref_logprobs, baseline_rewards,
        kl_ref_point,
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


def _gro_loss(cfg: GROConfig, inputs: _Inputs, *, safe: bool) -> GROOutput:
    """L = −Agg(sg(w(d) · f(A)) · log π) (+ kl_coef · Agg(k3) with kl_in_loss)."""
    lp, seq_lp, batch = _batch(cfg, inputs, safe)  # lp (B, T) and seq_lp (B,) carry the gradient
    with torch.no_grad():
        adv, dist, weight, coef = _coefficients(cfg, batch)
        norm = cfg.component("aggregation").function(batch, cfg)
    if coef.dim() == 1:
        # Σ_t coef_i · lp_it = coef_i · ℓ_i: the token sum is already there.
        policy_loss = -_aggregate(coef * seq_lp, norm)
    else:
        policy_loss = -_aggregate((coef * lp).sum(dim=1), norm)
    loss, kl_loss, token_kl = policy_loss, None, None
    if cfg.kl_in_loss and cfg.kl_coef > 0:
        assert batch.ref_logprobs is not None
        # Both sides are zero outside the mask, where k3(0, 0) = 0: no masking needed.
        token_kl = _k3(batch.ref_logprobs, lp)
        kl_loss = _aggregate(token_kl.sum(dim=1), norm)
        loss = policy_loss + cfg.kl_coef * kl_loss
    parts = _StatParts(cfg, batch, policy_loss.detach(), _detach(kl_loss),
                       weight if weight.dim() == 2 else None, _detach(token_kl))  # fmt: skip
    return _output(batch, loss, adv, dist, weight, coef, parts)


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


def _k3(target: Tensor, logprobs: Tensor) -> Tensor:
    """Per-token k3 estimate of KL(π_θ || π_target): exp(t − lp) − (t − lp) − 1 ≥ 0."""
    diff = target - logprobs
    return torch.exp(diff) - diff - 1


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
        groups=groups,
    )
    return lp, seq_lp, batch


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


def _coefficients(cfg: GROConfig, batch: GROBatch) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """A, d, w and the coefficient w · f(A), each (B,) or (B, T)."""
    adv = cfg.component("advantage").function(batch, cfg)
    sign = torch.sign(adv)
    # Sequence-level anchors see a sequence-level sign; the config refuses token-level
    # advantages with them, so the zeros below are never read.
    seq_sign = sign if adv.dim() == 1 else torch.zeros_like(batch.seq_logprobs)
    dist = cfg.component("anchor").function(batch, seq_sign, cfg)
    adv_b = adv
    if dist.dim() > adv.dim():  # per-token d, per-completion A: broadcast A over tokens
        adv_b, sign = adv.unsqueeze(1), sign.unsqueeze(1)
    weight = cfg.component("weight").function(dist, sign, cfg)
    coef = weight * cfg.component("f").function(adv_b, cfg)
    return adv, dist, weight, coef


def _output(
    batch: GROBatch,
    loss: Tensor,
    adv: Tensor,
    dist: Tensor,
    weight: Tensor,
    coef: Tensor,
    parts: _StatParts,
) -> GROOutput:
    return GROOutput(
        loss=loss,
        advantages=_token_mean(adv, batch),
        anchor_distances=_token_mean(dist, batch),
        weights=_token_mean(weight, batch),
        coefficients=_token_mean(coef, batch),
        rewards=batch.rewards,
        token_advantages=adv if adv.dim() == 2 else None,
        _parts=parts,
    )


def _token_mean(values: Tensor, batch: GROBatch) -> Tensor:
    """(B, T) -> (B,) mean over each completion's tokens; (B,) passes through."""
    if values.dim() == 1:
        return values
    full = values.expand_as(batch.maskf)
    return torch.einsum("bt,bt->b", full, batch.maskf) / batch.lengths


def _mean_std(prefix: str, values: Tensor) -> dict[str, Tensor]:
    std = values.std() if values.numel() > 1 else torch.zeros_like(values.sum())
    return {f"{prefix}/mean": values.mean(), f"{prefix}/std": std}


def _stats(out: GROOutput, parts: _StatParts) -> dict[str, float]:
    batch = parts.batch
    stats: dict[str, Tensor] = {"loss/policy": parts.policy_loss}
    if parts.kl_loss is not None:
        stats["loss/kl"] = parts.kl_loss
    stats |= _mean_std("reward", batch.raw_rewards)
    stats |= _mean_std("adv", out.advantages)
    stats |= _mean_std("gro/anchor_distance", out.anchor_distances)
    stats |= _mean_std("gro/weight", out.weights)
    stats |= _mean_std("gro/coef", out.coefficients)
    stats["gro/zero_var_groups"] = _zero_variance_share(batch)
    stats |= _kl_stats(batch, parts.token_kl_ref)
    if parts.cfg.weight == "clip" and parts.token_weight is not None:
        # w = ρ > 0 except where clipping zeroed it; padding has ρ = 1, so it never counts.
        clipped = (parts.token_weight == 0).sum().to(batch.lengths.dtype)
        stats["gro/clip_frac"] = clipped / batch.mask.sum().clamp(min=1)
    names = list(stats)
    values = torch.stack([stats[n].to(batch.lengths.dtype) for n in names]).tolist()
    return dict(zip(names, values, strict=True))


def _kl_stats(batch: GROBatch, token_kl_ref: Tensor | None) -> dict[str, Tensor]:
    """Per-token k3 estimates of KL(π_θ || π_old) and KL(π_θ || π_ref).

    Padding holds zeros on both sides, where k3 is 0, so a plain sum over (B, T) is the
    sum over completion tokens.
    """
    tokens = batch.mask.sum().clamp(min=1)
    same = batch.old_logprobs is batch.logprobs  # old_logprobs=None: the ratio is 1
    kl_old = torch.zeros_like(tokens, dtype=batch.maskf.dtype) if same else None
    stats = {"kl/old": kl_old if same else _k3(batch.old_logprobs, batch.logprobs).sum() / tokens}
    if batch.ref_logprobs is not None:
        k3 = token_kl_ref if token_kl_ref is not None else _k3(batch.ref_logprobs, batch.logprobs)
        stats["kl/ref"] = k3.sum() / tokens
    return stats


def _zero_variance_share(batch: GROBatch) -> Tensor:
    """Share of groups (of 2 or more) whose rewards are all equal: they carry no signal."""
    g = batch.groups
    multi = g.counts > 1
    flat = g.all_equal(batch.raw_rewards) & multi
    return flat.sum().to(batch.lengths.dtype) / multi.sum().clamp(min=1)
