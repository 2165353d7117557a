"""Every preset's gradient equals its method's published loss, in float64, to 1e-9."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from gro_core.methods import PRESETS, get_preset
from gro_core.objective.loss import gro_loss
from tests.gro_core import reference_losses as ref

RTOL = 1e-9


@dataclass
class RandomBatch:
    logprobs: torch.Tensor  # (B, T) leaf with grad
    old: torch.Tensor
    ref: torch.Tensor
    mask: torch.Tensor
    rewards: torch.Tensor
    group_ids: torch.Tensor


def _mask(lengths: list[int], width: int) -> torch.Tensor:
    return torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]


def random_batch(sizes: list[int], seed: int, width: int = 11, rewards=None) -> RandomBatch:
    """Groups of the given sizes, members shuffled across the batch, uneven lengths,
    old log-probs far enough from the current ones that clipping is active."""
    gen = torch.Generator().manual_seed(seed)
    group_ids = torch.cat([torch.full((s,), 100 + 7 * g) for g, s in enumerate(sizes)])
    perm = torch.randperm(len(group_ids), generator=gen)
    group_ids = group_ids[perm]
    n = len(group_ids)
    lengths = torch.randint(1, width + 1, (n,), generator=gen).tolist()
    mask = _mask(lengths, width)
    lp = -torch.rand(n, width, generator=gen, dtype=torch.float64) * 3
    old = lp + 0.4 * torch.randn(n, width, generator=gen, dtype=torch.float64)
    reference = lp + 0.3 * torch.randn(n, width, generator=gen, dtype=torch.float64)
    if rewards is None:
        rewards = torch.randn(n, generator=gen, dtype=torch.float64)
    return RandomBatch(lp.requires_grad_(), old, reference, mask, rewards, group_ids)


def random_pairs(num_pairs: int, seed: int) -> RandomBatch:
    """Preference pairs in random order: rejected first as often as chosen first."""
    batch = random_batch([2] * num_pairs, seed)
    rewards = torch.ones(len(batch.group_ids), dtype=torch.float64)
    gen = torch.Generator().manual_seed(seed + 1)
    for g in batch.group_ids.unique():
        members = (batch.group_ids == g).nonzero().flatten()
        loser = members[torch.randint(0, 2, (1,), generator=gen)]
        rewards[loser] = -1.0
    batch.rewards = rewards
    return batch


def grad_of(loss: torch.Tensor, batch: RandomBatch) -> torch.Tensor:
    (grad,) = torch.autograd.grad(loss, batch.logprobs)
    return grad


def assert_same_grad(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    assert theirs.abs().max() > 0, "the reference gradient is zero: the test proves nothing"
    rel = (ours - theirs).abs().max() / theirs.abs().max()
    assert rel <= RTOL, f"relative gradient error {rel:.3e}"


def ours(name: str, b: RandomBatch, **kwargs) -> torch.Tensor:
    cfg = get_preset(name, **kwargs.pop("preset_args", {}))
    out = gro_loss(
        cfg,
        logprobs=b.logprobs,
        mask=b.mask,
        rewards=b.rewards,
        group_ids=b.group_ids,
        old_logprobs=b.old,
        ref_logprobs=b.ref,
        **kwargs,
    )
    return grad_of(out.loss, b)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("beta", [0.1, 0.7])
def test_dpo_gradient_matches_published_loss(seed: int, beta: float) -> None:
    b = random_pairs(6, seed)
    theirs = grad_of(ref.dpo_loss(b.logprobs, b.ref, b.mask, b.rewards, b.group_ids, beta), b)
    assert_same_grad(ours("dpo", b, preset_args={"beta": beta}), theirs)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("z0", [None, 0.3])
def test_kto_gradient_matches_published_loss(seed: int, z0: float | None) -> None:
    b = random_batch([1] * 9, seed)
    b.rewards = torch.where(b.rewards > 0, 1.0, -1.0).double()
    b.ref = b.logprobs.detach() - 0.2 * torch.rand_like(b.ref)  # mean Δ > 0: z0 is not clamped
    args = {"beta": 0.3, "desirable_weight": 1.5, "undesirable_weight": 0.6}
    loss = ref.kto_loss(
        b.logprobs,
        b.ref,
        b.mask,
        b.rewards,
        0.3,
        1.5,
        0.6,
        None if z0 is None else torch.tensor(z0, dtype=torch.float64),
    )
    grad = ours("kto", b, preset_args=args, kl_ref_point=z0)
    assert_same_grad(grad, grad_of(loss, b))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cpl_gradient_matches_published_loss(seed: int) -> None:
    b = random_pairs(5, seed)
    loss = ref.cpl_loss(b.logprobs, b.mask, b.rewards, b.group_ids, 0.2, 0.5)
    assert_same_grad(ours("cpl", b, preset_args={"alpha": 0.2, "lam": 0.5}), grad_of(loss, b))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("normalize", [False, True])
def test_rloo_gradient_matches_published_loss(seed: int, normalize: bool) -> None:
    b = random_batch([2, 3, 4, 5], seed)
    # Sequence ratios near 1, so some are clipped and some are not.
    b.old = b.logprobs.detach() + 0.05 * torch.randn_like(b.old)
    loss = ref.rloo_loss(
        b.logprobs, b.old, b.ref, b.mask, b.rewards, b.group_ids, 0.05, normalize=normalize
    )
    grad = ours("rloo", b, preset_args={"normalize_advantages": normalize})
    assert_same_grad(grad, grad_of(loss, b))


def test_remax_gradient_matches_published_loss() -> None:
    b = random_batch([1] * 7, 3)
    baseline = torch.randn(7, dtype=torch.float64)
    loss = ref.remax_loss(b.logprobs, b.mask, b.rewards, baseline)
    assert_same_grad(ours("remax", b, baseline_rewards=baseline), grad_of(loss, b))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kl_coef", [0.0, 0.04])
def test_grpo_gradient_matches_published_loss(seed: int, kl_coef: float) -> None:
    b = random_batch([3, 4, 1, 6], seed)
    loss = ref.grpo_loss(b.logprobs, b.old, b.ref, b.mask, b.rewards, b.group_ids, 0.2, kl_coef)
    assert_same_grad(ours("grpo", b, preset_args={"kl_coef": kl_coef}), grad_of(loss, b))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("baseline", [False, True])
def test_reinforce_pp_gradient_matches_published_loss(seed: int, baseline: bool) -> None:
    b = random_batch([4, 4, 2, 3], seed)
    loss = ref.reinforce_pp_loss(
        b.logprobs, b.old, b.ref, b.mask, b.rewards, b.group_ids, 0.01, 0.2, baseline
    )
    grad = ours("reinforce_pp", b, preset_args={"baseline": baseline})
    assert_same_grad(grad, grad_of(loss, b))


@pytest.mark.parametrize("seed", [0, 1])
def test_awr_gradient_matches_published_loss(seed: int) -> None:
    b = random_batch([4, 3, 5], seed)
    b.rewards = b.rewards * 3  # spread advantages so some weights hit the cap
    loss = ref.awr_loss(b.logprobs, b.mask, b.rewards, b.group_ids, 0.5, 3.0)
    grad = ours("awr", b, preset_args={"tau": 0.5, "max_weight": 3.0})
    assert_same_grad(grad, grad_of(loss, b))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gro_gradient_matches_eq_35(seed: int) -> None:
    b = random_batch([2, 3, 4, 6], seed)
    loss = ref.gro_loss_reference(b.logprobs, b.mask, b.rewards, b.group_ids, 1.3)
    assert_same_grad(ours("gro", b, preset_args={"beta": 1.3}), grad_of(loss, b))


def test_clipping_is_active_in_the_random_batches() -> None:
    """The GRPO checks above mean something only if some tokens are clipped."""
    b = random_batch([3, 4, 1, 6], 0)
    out = gro_loss(
        get_preset("grpo"),
        logprobs=b.logprobs,
        mask=b.mask,
        rewards=b.rewards,
        group_ids=b.group_ids,
        old_logprobs=b.old,
        ref_logprobs=b.ref,
    )
    assert 0.05 < out.stats["gro/clip_frac"] < 0.95


def test_every_preset_is_checked_against_a_reference() -> None:
    """Here against an independent reference, or against TRL's own code (test_trl_exact)."""
    from gro_core.docgen.objective import proofs

    independent = {"dpo", "kto", "cpl", "rloo", "remax", "grpo", "reinforce_pp", "awr", "gro"}
    found = proofs()
    assert independent <= set(proofs(("tests/gro_core/test_presets.py",)))
    assert set(PRESETS) <= set(found), set(PRESETS) - set(found)
