"""gro_loss's output and the scalar diagnostics it logs (computed on first access)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor

from gro_core.objective.batch import GROBatch
from gro_core.objective.config import GROConfig


@dataclass(eq=False)
class GROOutput:
    """The loss and the per-completion quantities behind it (all but `loss` detached).

    `loss` is the surrogate whose gradient is the objective's; `value` is the method's own
    loss at this batch (what TRL or the paper reports), the number to plot and compare.
    `stats` is computed on first access, so a training step that does not log pays nothing.
    """

    loss: Tensor  # () with grad
    value: Tensor  # () detached: the method's loss value
    advantages: Tensor  # (B,) A_i; the token mean for token-level advantages
    anchor_distances: Tensor  # (B,) d_i; the token mean of log-ratios for anchor "old"
    weights: Tensor  # (B,) w_i; the token mean for per-token weights
    coefficients: Tensor  # (B,) w·f(A), the effective REINFORCE coefficient
    rewards: Tensor  # (B,) rewards after any KL-in-reward penalty
    token_advantages: Tensor | None  # (B, T) for token-level advantages
    _parts: StatParts

    @cached_property
    def stats(self) -> dict[str, float]:
        """Scalar diagnostics (namespaced keys), gathered so a GPU syncs once."""
        return _stats(self, self._parts)


@dataclass(frozen=True)
class StatParts:
    """What the diagnostics need beyond the output's own tensors."""

    cfg: GROConfig
    batch: GROBatch
    policy_loss: Tensor
    kl_loss: Tensor | None
    nll_loss: Tensor | None
    token_weight: Tensor | None  # (B, T) per-token weights, for the clip fraction
    token_kl_ref: Tensor | None  # (B, T) k3 to the reference, when the loss computed it


def make_output(
    batch: GROBatch,
    loss: Tensor,
    value: Tensor,
    coefficients: tuple[Tensor, Tensor, Tensor, Tensor],
    parts: StatParts,
) -> GROOutput:
    adv, dist, weight, coef = coefficients
    return GROOutput(
        loss=loss,
        value=value,
        advantages=token_mean(adv, batch),
        anchor_distances=token_mean(dist, batch),
        weights=token_mean(weight, batch),
        coefficients=token_mean(coef, batch),
        rewards=batch.rewards,
        token_advantages=adv if adv.dim() == 2 else None,
        _parts=parts,
    )


def token_mean(values: Tensor, batch: GROBatch) -> Tensor:
    """(B, T) -> (B,) mean over each completion's tokens; (B,) passes through."""
    if values.dim() == 1:
        return values
    full = values.expand_as(batch.maskf)
    return torch.einsum("bt,bt->b", full, batch.maskf) / batch.lengths


def k3(target: Tensor, logprobs: Tensor) -> Tensor:
    """Per-token k3 estimate of KL(π_θ || π_target): exp(t − lp) − (t − lp) − 1 ≥ 0."""
    diff = target - logprobs
    return torch.exp(diff) - diff - 1


def _mean_std(prefix: str, values: Tensor) -> dict[str, Tensor]:
    std = values.std() if values.numel() > 1 else torch.zeros_like(values.sum())
    return {f"{prefix}/mean": values.mean(), f"{prefix}/std": std}


def _stats(out: GROOutput, parts: StatParts) -> dict[str, float]:
    batch = parts.batch
    stats: dict[str, Tensor] = {"loss/value": out.value, "loss/policy": parts.policy_loss}
    if parts.kl_loss is not None:
        stats["loss/kl"] = parts.kl_loss
    if parts.nll_loss is not None:
        stats["loss/nll"] = parts.nll_loss
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
    elif parts.cfg.weight == "clip":  # one ratio per completion (RLOO, GSPO): their share
        stats["gro/clip_frac"] = (out.weights == 0).to(batch.lengths.dtype).mean()
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
    stats = {"kl/old": kl_old if same else k3(batch.old_logprobs, batch.logprobs).sum() / tokens}
    if batch.ref_logprobs is not None:
        kl = token_kl_ref if token_kl_ref is not None else k3(batch.ref_logprobs, batch.logprobs)
        stats["kl/ref"] = kl.sum() / tokens
    return stats


def _zero_variance_share(batch: GROBatch) -> Tensor:
    """Share of groups (of 2 or more) whose rewards are all equal: they carry no signal."""
    g = batch.groups
    multi = g.counts > 1
    flat = g.all_equal(batch.raw_rewards) & multi
    return flat.sum().to(batch.lengths.dtype) / multi.sum().clamp(min=1)
