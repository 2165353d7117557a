"""Each method's published loss, written from its formula with plain loops.

These are the independent references the presets are checked against: they know nothing
of GROConfig, anchors or weights, only the methods' own equations (docs/objective.md's list).
Inputs follow gro_loss: logprobs (B, T) with grad, mask (B, T) bool, rewards (B,), groups
as lists of completion indices.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def seq_sum(values: Tensor, mask: Tensor, i: int) -> Tensor:
    """Σ_t over completion i's own tokens."""
    return values[i][mask[i]].sum()


def group_lists(group_ids: Tensor) -> list[list[int]]:
    groups: dict[int, list[int]] = {}
    for i, g in enumerate(group_ids.tolist()):
        groups.setdefault(g, []).append(i)
    return list(groups.values())


def pairs(group_ids: Tensor, rewards: Tensor) -> list[tuple[int, int]]:
    """(chosen, rejected) index pairs, whatever order they come in."""
    out = []
    for members in group_lists(group_ids):
        a, b = members
        out.append((a, b) if rewards[a] > rewards[b] else (b, a))
    return out


def dpo_loss(lp, ref, mask, rewards, group_ids, beta):
    losses = []
    for win, lose in pairs(group_ids, rewards):
        delta_w = seq_sum(lp, mask, win) - seq_sum(ref, mask, win)
        delta_l = seq_sum(lp, mask, lose) - seq_sum(ref, mask, lose)
        losses.append(-F.logsigmoid(beta * (delta_w - delta_l)))
    return torch.stack(losses).mean()


def kto_loss(lp, ref, mask, rewards, beta, w_d, w_u, z0=None):
    deltas = [seq_sum(lp, mask, i) - seq_sum(ref, mask, i) for i in range(lp.shape[0])]
    if z0 is None:
        z0 = torch.stack(deltas).detach().mean().clamp(min=0)
    losses = []
    for i, delta in enumerate(deltas):
        if rewards[i] > 0:
            losses.append(w_d * (1 - torch.sigmoid(beta * (delta - z0))))
        else:
            losses.append(w_u * (1 - torch.sigmoid(beta * (z0 - delta))))
    return torch.stack(losses).mean()


def cpl_loss(lp, mask, rewards, group_ids, alpha, lam):
    losses = []
    for win, lose in pairs(group_ids, rewards):
        margin = alpha * seq_sum(lp, mask, win) - lam * alpha * seq_sum(lp, mask, lose)
        losses.append(-F.logsigmoid(margin))
    return torch.stack(losses).mean()


def rloo_loss(lp, old, ref, mask, rewards, group_ids, kl_coef, eps=0.2, normalize=False):
    """TRL's RLOO: the completion's importance ratio exp(ℓ − ℓ_old), clipped as PPO's."""
    penalised = rewards.clone()
    for i in range(lp.shape[0]):
        penalised[i] -= kl_coef * (seq_sum(old, mask, i) - seq_sum(ref, mask, i))
    adv = torch.zeros_like(penalised)
    for members in group_lists(group_ids):
        for i in members:
            others = [penalised[j] for j in members if j != i]
            adv[i] = penalised[i] - sum(others) / len(others)
    if normalize:
        adv = (adv - adv.mean()) / (adv.std() + 1e-4)
    total = 0.0
    for i in range(lp.shape[0]):
        ratio = torch.exp(seq_sum(lp, mask, i) - seq_sum(old, mask, i))
        a = adv[i].detach()
        total = total - torch.min(ratio * a, ratio.clamp(1 - eps, 1 + eps) * a)
    return total / lp.shape[0]


def remax_loss(lp, mask, rewards, baseline):
    terms = [-(rewards[i] - baseline[i]) * seq_sum(lp, mask, i) for i in range(lp.shape[0])]
    return torch.stack(terms).mean()


def group_normalised(rewards, group_ids):
    """(r − mean)/(std + 1e-4) per group, Bessel std; a group of one gets 0."""
    adv = torch.zeros_like(rewards)
    for members in group_lists(group_ids):
        r = rewards[members]
        if len(members) > 1:
            adv[members] = (r - r.mean()) / (r.std() + 1e-4)
    return adv


def ppo_token_loss(lp, old, adv, eps_lo, eps_hi):
    """−min(ρA, clip(ρ, 1−ε_lo, 1+ε_hi)A), elementwise."""
    ratio = torch.exp(lp - old)
    return -torch.min(ratio * adv, torch.clamp(ratio, 1 - eps_lo, 1 + eps_hi) * adv)


def grpo_loss(lp, old, ref, mask, rewards, group_ids, eps, kl_coef):
    adv = group_normalised(rewards, group_ids)
    per_seq = []
    for i in range(lp.shape[0]):
        m = mask[i]
        tok = ppo_token_loss(lp[i][m], old[i][m], adv[i], eps, eps)
        if kl_coef:
            diff = ref[i][m] - lp[i][m]
            tok = tok + kl_coef * (torch.exp(diff) - diff - 1)
        per_seq.append(tok.sum() / m.sum())
    return torch.stack(per_seq).mean()


def reinforce_pp_advantages(old, ref, mask, rewards, group_ids, kl_coef, baseline):
    """Token rewards (k1 on each token, r on the last), returns, batch whitening."""
    r = rewards.clone()
    if baseline:
        for members in group_lists(group_ids):
            r[members] = rewards[members] - rewards[members].mean()
    returns = []
    for i in range(old.shape[0]):
        positions = mask[i].nonzero().flatten().tolist()
        token_r = [-kl_coef * (old[i, t] - ref[i, t]) for t in positions]
        token_r[-1] = token_r[-1] + r[i]
        running, out = 0.0, []
        for value in reversed(token_r):
            running = running + value
            out.append(running)
        returns.append(torch.stack(list(reversed(out))))
    flat = torch.cat(returns)
    mean, var = flat.mean(), flat.var(unbiased=False)
    return [(g - mean) / torch.sqrt(var + 1e-8) for g in returns]


def reinforce_pp_loss(lp, old, ref, mask, rewards, group_ids, kl_coef, eps, baseline=False):
    advs = reinforce_pp_advantages(old, ref, mask, rewards, group_ids, kl_coef, baseline)
    total, count = 0.0, 0
    for i, adv in enumerate(advs):
        m = mask[i]
        total = total + ppo_token_loss(lp[i][m], old[i][m], adv, eps, eps).sum()
        count += int(m.sum())
    return total / count


def awr_loss(lp, mask, rewards, group_ids, tau, max_weight):
    adv = group_normalised(rewards, group_ids)
    terms = []
    for i in range(lp.shape[0]):
        weight = min(float(torch.exp(adv[i] / tau)), max_weight)
        terms.append(-weight * seq_sum(lp, mask, i))
    return torch.stack(terms).mean()


def gro_loss_reference(lp, mask, rewards, group_ids, beta):
    """The paper's eq. (35) with the spec's choices, one completion at a time."""
    n = lp.shape[0]
    x = [float(seq_sum(lp.detach(), mask, i)) / int(mask[i].sum()) for i in range(n)]
    adv = [0.0] * n
    for members in group_lists(group_ids):
        for i in members:
            others = [float(rewards[j]) for j in members if j != i]
            adv[i] = float(rewards[i]) - sum(others) / len(others)
    total = 0.0
    for members in group_lists(group_ids):
        for i in members:
            sign = (adv[i] > 0) - (adv[i] < 0)
            opposite = [x[j] for j in members if ((adv[j] > 0) - (adv[j] < 0)) == -sign]
            d = x[i] - sum(opposite) / len(opposite) if sign and opposite else 0.0
            w = 1 / (1 + torch.exp(torch.tensor(beta * sign * d, dtype=torch.float64)))
            total = total - float(w) * adv[i] * seq_sum(lp, mask, i)
    return total / n
