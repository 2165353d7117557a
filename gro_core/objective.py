"""The GRO objective: one surrogate loss whose gradient is E[w(d) · f(A) · ∇ℓ].

    L = − Agg( sg(w · f(A)) · logprobs )  (+ kl_coef · Agg(k3) with kl_in_loss)

Every preset in gro_core.presets is a GROConfig for this one function. Everything but the
final multiply is computed under no_grad from a detached view of the batch, so the
gradient is exactly the objective's and the cost is a handful of O(B·T) passes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from gro_core.advantages import ADVANTAGES, kl_penalised_rewards
from gro_core.batch import Batch
from gro_core.components import AGGREGATIONS, ANCHORS, TRANSFORMS, WEIGHTS, anchor_x, clip_mask
from gro_core.config import GROConfig
from gro_core.groups import make_groups


@dataclass
class GROOutput:
    """The loss and the per-completion quantities behind it (all but `loss` detached)."""

    loss: Tensor  # () with grad
    advantages: Tensor  # (B,) A_i; the token mean for token-level advantages
    anchor_distances: Tensor  # (B,) d_i; the token mean of log-ratios for anchor "old"
    weights: Tensor  # (B,) w_i; the token mean for per-token weights
    coefficients: Tensor  # (B,) w·f(A), the effective REINFORCE coefficient
    rewards: Tensor  # (B,) rewards after any KL-in-reward penalty
    token_advantages: Tensor | None = None  # (B, T) for token-level advantages
    stats: dict[str, float] = field(default_factory=dict)


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
    dtype = torch.promote_types(logprobs.dtype, torch.float32)
    mask = mask.bool()
    # Zeroing padding first keeps non-finite pad values out of the forward and the backward.
    lp = _masked(logprobs.to(dtype), mask)  # (B, T), with grad
    seq_lp = lp.sum(dim=1)  # (B,) ℓ_i, with grad
    with torch.no_grad():
        batch = _detached_batch(
            cfg, lp, seq_lp, mask, rewards, group_ids, old_logprobs, ref_logprobs,
            baseline_rewards, kl_ref_point,
        )  # fmt: skip
        adv, dist, weight, coef = _coefficients(cfg, batch)
        norm = AGGREGATIONS[cfg.aggregation](batch, cfg)  # (B,)
    if coef.dim() == 1:
        # Σ_t coef_i · lp_it = coef_i · ℓ_i: no second pass over the tokens.
        policy_loss = -(norm * coef * seq_lp).sum()
    else:
        policy_loss = -(norm * (coef * lp).sum(dim=1)).sum()
    loss, kl_loss = policy_loss, None
    if cfg.kl_in_loss and cfg.kl_coef > 0:
        assert batch.ref_logprobs is not None
        kl_loss = (norm * _masked(_k3(batch.ref_logprobs, lp), mask).sum(dim=1)).sum()
        loss = policy_loss + cfg.kl_coef * kl_loss
    return _output(cfg, batch, loss, policy_loss, kl_loss, adv, dist, weight, coef, rewards)


def _masked(values: Tensor, mask: Tensor) -> Tensor:
    return torch.where(mask, values, torch.zeros((), dtype=values.dtype, device=values.device))


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


def _detached_batch(
    cfg: GROConfig,
    lp: Tensor,
    seq_lp: Tensor,
    mask: Tensor,
    rewards: Tensor,
    group_ids: Tensor | None,
    old_logprobs: Tensor | None,
    ref_logprobs: Tensor | None,
    baseline_rewards: Tensor | None,
    kl_ref_point: Tensor | float | None,
) -> Batch:
    dtype = lp.dtype
    logprobs = lp.detach()
    old = logprobs if old_logprobs is None else _masked(old_logprobs.to(dtype), mask)
    ref = None if ref_logprobs is None else _masked(ref_logprobs.to(dtype), mask)
    seq_old = seq_lp.detach() if old_logprobs is None else old.sum(dim=1)
    seq_ref = None if ref is None else ref.sum(dim=1)
    groups = make_groups(group_ids, logprobs.shape[0], logprobs.device)
    _check_group_sizes(cfg, groups.counts)
    r = rewards.to(dtype)
    if cfg.kl_in_reward:
        r = kl_penalised_rewards(r, seq_old, seq_ref, cfg.kl_coef)
    z0 = None if kl_ref_point is None else torch.as_tensor(kl_ref_point, dtype=dtype)
    return Batch(
        logprobs=logprobs,
        old_logprobs=old,
        ref_logprobs=ref,
        mask=mask,
        lengths=mask.sum(dim=1).clamp(min=1).to(dtype),
        seq_logprobs=seq_lp.detach(),
        seq_old=seq_old,
        seq_ref=seq_ref,
        rewards=r,
        baseline_rewards=None if baseline_rewards is None else baseline_rewards.to(dtype),
        kl_ref_point=None if z0 is None else z0.to(logprobs.device),
        groups=groups,
    )


def _check_group_sizes(cfg: GROConfig, counts: Tensor) -> None:
    if cfg.advantage == "rloo" and int(counts.min()) < 2:
        raise ValueError(
            f"{cfg.name}: advantage 'rloo' needs at least 2 completions per group (prompt); "
            "got a group of 1. Use num_generations >= 2, or advantage='raw' for unpaired data"
        )
    if cfg.anchor == "pair" and bool((counts != 2).any()):
        raise ValueError(
            f"{cfg.name}: anchor 'pair' needs groups of exactly 2 (chosen, rejected); "
            f"got sizes {sorted(set(counts.tolist()))}"
        )


def _coefficients(cfg: GROConfig, batch: Batch) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """A, d, w and the coefficient w · f(A), each (B,) or (B, T)."""
    adv = ADVANTAGES[cfg.advantage](batch, cfg)
    sign = torch.sign(adv) if adv.dim() == 1 else torch.zeros_like(batch.seq_logprobs)
    x = anchor_x(batch, sign, cfg)
    dist = ANCHORS[cfg.anchor](batch, x, sign, cfg)
    adv_b = adv.unsqueeze(1) if dist.dim() > adv.dim() else adv  # broadcast to d's shape
    weight = WEIGHTS[cfg.weight](dist, adv_b, cfg)
    coef = weight * TRANSFORMS[cfg.f](adv_b, cfg)
    return adv, dist, weight, coef


def _token_mean(values: Tensor, batch: Batch) -> Tensor:
    """(B, T) -> (B,) mean over each completion's tokens; (B,) passes through."""
    if values.dim() == 1:
        return values
    return _masked(values.expand_as(batch.logprobs), batch.mask).sum(dim=1) / batch.lengths


def _output(
    cfg: GROConfig,
    batch: Batch,
    loss: Tensor,
    policy_loss: Tensor,
    kl_loss: Tensor | None,
    adv: Tensor,
    dist: Tensor,
    weight: Tensor,
    coef: Tensor,
    raw_rewards: Tensor,
) -> GROOutput:
    with torch.no_grad():
        out = GROOutput(
            loss=loss,
            advantages=_token_mean(adv, batch),
            anchor_distances=_token_mean(dist, batch),
            weights=_token_mean(weight, batch),
            coefficients=_token_mean(coef, batch),
            rewards=batch.rewards,
            token_advantages=adv if adv.dim() == 2 else None,
        )
        out.stats = _stats(cfg, batch, out, policy_loss, kl_loss, dist, raw_rewards)
    return out


def _mean_std(prefix: str, values: Tensor) -> dict[str, Tensor]:
    std = values.std() if values.numel() > 1 else torch.zeros_like(values.sum())
    return {f"{prefix}/mean": values.mean(), f"{prefix}/std": std}


def _stats(
    cfg: GROConfig,
    batch: Batch,
    out: GROOutput,
    policy_loss: Tensor,
    kl_loss: Tensor | None,
    dist: Tensor,
    raw_rewards: Tensor,
) -> dict[str, float]:
    """Scalar diagnostics, gathered into one tensor so a GPU syncs once, not per key."""
    stats: dict[str, Tensor] = {"loss/policy": policy_loss.detach()}
    if kl_loss is not None:
        stats["loss/kl"] = kl_loss.detach()
    stats |= _mean_std("reward", raw_rewards.to(batch.rewards.dtype))
    stats |= _mean_std("adv", out.advantages)
    stats |= _mean_std("gro/anchor_distance", out.anchor_distances)
    stats |= _mean_std("gro/weight", out.weights)
    stats |= _mean_std("gro/coef", out.coefficients)
    stats["gro/zero_var_groups"] = _zero_variance_share(batch, raw_rewards)
    stats["kl/old"] = _token_share(batch, _k3(batch.old_logprobs, batch.logprobs))
    if batch.ref_logprobs is not None:
        stats["kl/ref"] = _token_share(batch, _k3(batch.ref_logprobs, batch.logprobs))
    if cfg.weight == "clip":
        adv = out.token_advantages if out.token_advantages is not None else out.advantages
        adv = adv.unsqueeze(1) if adv.dim() == 1 else adv
        clipped = clip_mask(torch.exp(dist), adv, cfg).to(dist.dtype)
        stats["gro/clip_frac"] = _token_share(batch, clipped)
    names = list(stats)
    values = torch.stack([stats[n].to(batch.logprobs.dtype) for n in names]).tolist()
    return dict(zip(names, values, strict=True))


def _token_share(batch: Batch, values: Tensor) -> Tensor:
    """Mean of a (B, T) quantity over all completion tokens of the batch."""
    return _masked(values, batch.mask).sum() / batch.mask.sum().clamp(min=1)


def _zero_variance_share(batch: Batch, raw_rewards: Tensor) -> Tensor:
    """Share of groups (of 2 or more) whose rewards are all equal: they carry no signal."""
    g = batch.groups
    multi = g.counts > 1
    flat = g.all_equal(raw_rewards.to(batch.rewards.dtype)) & multi
    return flat.sum().to(batch.rewards.dtype) / multi.sum().clamp(min=1)
