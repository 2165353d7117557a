"""Advantages A: how much better a completion did than a baseline (records in components.py).

Each function maps the detached batch to advantages, (B,) for sequence-level estimators or
(B, T) for token-level ones (REINFORCE++). All are vectorised over groups with scatter ops.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from gro_core.objective.batch import GROBatch

if TYPE_CHECKING:
    from gro_core.objective.config import GROConfig

# Added to the group std so a group of near-identical rewards does not blow up (as in TRL).
STD_EPS = 1e-4
# Inside the square root of REINFORCE++'s whitening (OpenRLHF's choice).
WHITEN_EPS = 1e-8


def raw(batch: GROBatch, cfg: GROConfig) -> Tensor:
    """A_i = r_i (preference data enters as ±1)."""
    return batch.rewards


def _zero_where_flat(adv: Tensor, batch: GROBatch) -> Tensor:
    """Exactly 0 for groups whose rewards are all equal, instead of rounding noise."""
    flat = batch.groups.all_equal(batch.rewards)[batch.groups.index]
    return torch.where(flat, torch.zeros_like(adv), adv)


def rloo(batch: GROBatch, cfg: GROConfig) -> Tensor:
    """Leave-one-out baseline: A_i = r_i − mean of the other rewards in its group."""
    g = batch.groups
    others = g.sum(batch.rewards)[g.index] - batch.rewards
    adv = batch.rewards - others / (g.members() - 1).to(batch.rewards.dtype)
    return _zero_where_flat(adv, batch)


def _group_std(rewards: Tensor, batch: GROBatch) -> Tensor:
    """(B,) Bessel-corrected std of each completion's group; 0 for a group of one."""
    g = batch.groups
    centred = rewards - g.mean(rewards)[g.index]
    denom = (g.counts - 1).clamp(min=1).to(rewards.dtype)
    return (g.sum(centred.square()) / denom).sqrt()[g.index]


def group_norm(batch: GROBatch, cfg: GROConfig) -> Tensor:
    """GRPO: A_i = (r_i − mean_g r)/(std + 1e-4), std the (Bessel) std of the group's rewards
    (adv_scale group) or the batch's (batch), or no division (none: Dr. GRPO); 0 for a group
    of one."""
    g = batch.groups
    r = batch.rewards
    centred = r - g.mean(r)[g.index]
    if cfg.adv_scale == "group":
        scaled = centred / (_group_std(r, batch) + STD_EPS)
    elif cfg.adv_scale == "batch":
        scaled = centred / (_batch_std(r, batch) + STD_EPS)
    else:  # "none": Dr. GRPO keeps the raw scale
        scaled = centred
    # A lone completion (or a group of equal rewards) carries no signal.
    return _zero_where_flat(scaled, batch)


def remax(batch: GROBatch, cfg: GROConfig) -> Tensor:
    """ReMax: A_i = r_i − b_i, b_i the reward of the greedy completion of the same prompt."""
    assert batch.baseline_rewards is not None  # checked by gro_loss before we get here
    return batch.rewards - batch.baseline_rewards


def _last_token_index(mask: Tensor) -> Tensor:
    """(B,) position of each row's last completion token (0 for an empty row)."""
    positions = torch.arange(mask.shape[1], device=mask.device)
    return torch.where(mask, positions, 0).amax(dim=1)


def _returns(batch: GROBatch, cfg: GROConfig) -> Tensor:
    """(B, T) REINFORCE++'s return of each token, before whitening."""
    mask = batch.mask
    r = batch.rewards
    if cfg.adv_baseline:
        r = r - batch.groups.mean(r)[batch.groups.index]
    token_rewards = torch.zeros_like(batch.logprobs)
    if batch.ref_logprobs is not None and cfg.kl_coef != 0:
        # old and ref are zero outside the mask, so the k1 penalty is too.
        token_rewards = -cfg.kl_coef * (batch.old_logprobs - batch.ref_logprobs)
    last = _last_token_index(mask).unsqueeze(1)  # (B, 1)
    token_rewards = token_rewards.scatter_add(1, last, r.unsqueeze(1))
    return token_rewards.flip(1).cumsum(1).flip(1)  # (B, T)


def reinforce_pp(batch: GROBatch, cfg: GROConfig) -> Tensor:
    """REINFORCE++, per token: the return of token rewards (−kl_coef·(old − ref) on every
    token, r_i on the last), whitened over the batch's tokens. -> (B, T).

    Token reward: −kl_coef·(old − ref) on every token (k1), plus r_i (minus its group mean
    with `adv_baseline`) on the last token. Return G_t = Σ_{t' ≥ t} (γ = 1), then
    (G − mean)/sqrt(var + 1e-8) over all valid tokens of the batch (the step's, across
    micro-batches and ranks, when `batch.moments` holds them), biased variance.
    """
    returns = _returns(batch, cfg)
    if batch.moments is not None:
        mean, var = (t.to(returns) for t in moments_mean_var(batch.moments[0], bessel=False))
    else:
        valid = returns[batch.mask]
        mean = valid.mean()
        var = (valid - mean).square().mean()
    whitened = (returns - mean) * torch.rsqrt(var + WHITEN_EPS)
    return whitened * batch.maskf


# --- statistics over the whole step ------------------------------------------------------
#
# Two estimators divide by a statistic of the batch, not of one group: group_norm with
# adv_scale batch (the std of all rewards) and reinforce_pp (the mean and variance of all
# returns). A step cut into micro-batches, or over several ranks, must use the statistic of
# the whole step, or N ranks would not take one process's step. Each micro-batch contributes
# the moments [n, Σx, Σx²] of its values; the trainer sums them over micro-batches and
# ranks and hands the total back in `GROBatch.moments`.


def normalises_over_batch(cfg: GROConfig) -> bool:
    """Whether the config's estimator divides by a statistic of the whole batch."""
    batch_scaled = cfg.advantage == "group_norm" and cfg.adv_scale == "batch"
    return batch_scaled or cfg.advantage == "reinforce_pp"


def moments_read_old(cfg: GROConfig) -> bool:
    """Whether those statistics read the sampling policy's log-probs (a KL in the reward
    or in REINFORCE++'s return), so the trainer must have them before the step."""
    in_return = cfg.advantage == "reinforce_pp" and cfg.kl_coef != 0
    return in_return or (cfg.kl_in_reward and cfg.kl_coef != 0)


def batch_quantity(batch: GROBatch, cfg: GROConfig) -> Tensor | None:
    """The values the estimator normalises over the whole batch, flat; None when it has none."""
    if not normalises_over_batch(cfg):
        return None
    if cfg.advantage == "reinforce_pp":
        return _returns(batch, cfg)[batch.mask]
    return batch.rewards


def moments_of(values: Tensor | None) -> Tensor:
    """(3,) float64 [n, Σx, Σx²] of `values` (zeros for None)."""
    if values is None:
        return torch.zeros(3, dtype=torch.float64)
    x = values.detach().double().reshape(-1)
    return torch.stack([x.new_tensor(float(x.numel())), x.sum(), x.square().sum()]).cpu()


def moments_mean_var(moments: Tensor, *, bessel: bool) -> tuple[Tensor, Tensor]:
    """(mean, variance) from [n, Σx, Σx²], float64 scalars; Bessel-corrected when asked."""
    n, total, squares = moments.tolist()
    mean = total / max(n, 1.0)
    spread = max(squares - total * mean, 0.0)  # Σ(x − mean)², clamped against rounding
    var = spread / max(n - 1.0 if bessel else n, 1.0)
    return torch.tensor(mean, dtype=torch.float64), torch.tensor(var, dtype=torch.float64)


def _batch_std(rewards: Tensor, batch: GROBatch) -> Tensor:
    """The Bessel std of all rewards of the step (of this batch when no moments are given);
    a batch of one has none, and its advantage is 0 anyway."""
    if batch.moments is not None:
        return moments_mean_var(batch.moments[0], bessel=True)[1].sqrt().to(rewards)
    return rewards.std() if rewards.numel() > 1 else rewards.new_tensor(0.0)
