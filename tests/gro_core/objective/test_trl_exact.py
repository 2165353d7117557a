"""Every TRL-named preset against TRL's own loss code (TRL 1.16, float64): equal gradients
to 1e-9 relative and equal loss values (gro's `value` is TRL's returned loss).

The batches have uneven lengths, pairs in random order, groups of mixed sizes (one of a
single completion, one whose rewards are all equal) and old log-probs far enough from the
current ones that clipping is active. TRL computes advantages inside its generation step,
which needs a model and rewards functions: the loss code gets gro's advantages, whose
formulas tests/gro_core/test_presets.py checks against independent references.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
import torch

from gro_core.methods import get_preset
from gro_core.objective.loss import GROOutput, gro_loss
from tests.gro_core.test_presets import RTOL, RandomBatch, random_batch, random_pairs


def ours(name: str, b: RandomBatch, preset_args: dict | None = None, **kw: Any) -> GROOutput:
    return gro_loss(
        get_preset(name, **(preset_args or {})),
        logprobs=b.logprobs,
        mask=b.mask,
        rewards=b.rewards,
        group_ids=b.group_ids,
        old_logprobs=b.old,
        ref_logprobs=b.ref,
        **kw,
    )


def assert_exact(out: GROOutput, b: RandomBatch, theirs: torch.Tensor, leaf: torch.Tensor):
    """Same loss value, and the same gradient on the log-probs, as TRL's loss."""
    (our_grad,) = torch.autograd.grad(out.loss, b.logprobs)
    (their_grad,) = torch.autograd.grad(theirs, leaf)
    assert their_grad.abs().max() > 0, "TRL's gradient is zero: the test proves nothing"
    rel = (our_grad - their_grad).abs().max() / their_grad.abs().max()
    assert rel <= RTOL, f"relative gradient error {rel:.3e}"
    value, expected = float(out.value), float(theirs.detach())
    assert abs(value - expected) <= RTOL * max(1.0, abs(expected)), (value, expected)


def _leaf(b: RandomBatch) -> torch.Tensor:
    return b.logprobs.detach().clone().requires_grad_()


def rollouts(seed: int, old_noise: float = 0.4) -> RandomBatch:
    """Groups of 3, 4, 1 and 6; the group of 4 has equal rewards."""
    b = random_batch([3, 4, 1, 6], seed)
    flat = b.group_ids == b.group_ids.unique()[1]
    b.rewards = torch.where(flat, torch.tensor(0.5, dtype=torch.float64), b.rewards)
    b.old = b.logprobs.detach() + old_noise * (b.old - b.logprobs.detach()) / 0.4
    return b


NO_BIAS = {"use_bias_correction_kl": False}
# (preset, preset_args, TRL loss_type, TRL keywords): the GRPO family.
GRPO_CASES = [
    ("grpo", {"kl_coef": 0.0}, "grpo", {}),
    ("grpo", {"kl_coef": 0.04}, "grpo", {"beta": 0.04, "use_bias_correction_kl": False}),
    ("grpo", {"delta": 1.25}, "grpo", {"beta": 0.04, "delta": 1.25, **NO_BIAS}),
    ("dapo", {}, "dapo", {}),
    ("dapo", {"beta": 0.04}, "dapo", {"beta": 0.04}),
    ("dapo", {"epsilon_high": 0.28, "delta": 1.3}, "dapo", {"epsilon_high": 0.28, "delta": 1.3}),
    ("dapo", {"beta": 0.04, **NO_BIAS}, "dapo", {"beta": 0.04, **NO_BIAS}),
    ("bnpo", {"beta": 0.02}, "bnpo", {"beta": 0.02}),
    ("dr_grpo", {}, "dr_grpo", {}),
    ("dr_grpo", {"beta": 0.04, "max_completion_length": 16}, "dr_grpo",
     {"beta": 0.04, "max_completion_length": 16}),
    ("cispo", {}, "cispo", {"epsilon_high": 5.0}),
    ("cispo", {"epsilon_high": 1.1, "beta": 0.04}, "cispo", {"epsilon_high": 1.1, "beta": 0.04}),
    ("sapo", {}, "sapo", {}),
    ("sapo", {"beta": 0.04, "sapo_temperature_pos": 2.0, "sapo_temperature_neg": 0.5}, "sapo",
     {"beta": 0.04, "sapo_temperature_pos": 2.0, "sapo_temperature_neg": 0.5}),
]  # fmt: skip


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(("name", "args", "loss_type", "trl_kw"), GRPO_CASES)
def test_grpo_family_equals_trl(trl: ModuleType, seed, name, args, loss_type, trl_kw) -> None:
    b, leaf = rollouts(seed), None
    out = ours(name, b, args)
    leaf = _leaf(b)
    theirs = trl.grpo_loss(loss_type, leaf, b.old, b.ref, b.mask, out.advantages, **trl_kw)
    assert_exact(out, b, theirs, leaf)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("beta", [0.0, 0.04])
def test_gspo_equals_trl_sequence_level(trl: ModuleType, seed: int, beta: float) -> None:
    b = rollouts(seed, old_noise=1e-3)  # sequence ratios within GSPO's ε of 1, some clipped
    out = ours("gspo", b, {"beta": beta})
    leaf = _leaf(b)
    theirs = trl.grpo_loss(
        "grpo", leaf, b.old, b.ref, b.mask, out.advantages, beta=beta, epsilon=3e-4,
        epsilon_high=4e-4, importance_sampling_level="sequence",
    )  # fmt: skip
    assert (out.weights == 0).any() and (out.weights > 0).any()  # clipping active
    assert_exact(out, b, theirs, leaf)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("normalize", [False, True])
def test_rloo_equals_trl_with_old_logprobs(trl: ModuleType, seed: int, normalize: bool) -> None:
    b = random_batch([2, 3, 4, 5], seed)
    # Seeded: noise from the global generator left clipping inactive for some test orders.
    noise = torch.randn(
        b.old.shape, generator=torch.Generator().manual_seed(seed), dtype=b.old.dtype
    )
    b.old = b.logprobs.detach() + 0.1 * noise
    out = ours("rloo", b, {"normalize_advantages": normalize})
    leaf = _leaf(b)
    theirs = trl.rloo_loss(leaf, b.old, b.mask, out.advantages)
    assert (out.weights == 0).any() and (out.weights > 0).any()  # clipping active
    assert out.stats["gro/clip_frac"] == float((out.weights == 0).double().mean())
    assert_exact(out, b, theirs, leaf)


def _pair_layout(b: RandomBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of each pair's chosen and rejected member, in TRL's [chosen; rejected] order."""
    chosen, rejected = [], []
    for g in b.group_ids.unique():
        members = (b.group_ids == g).nonzero().flatten()
        win = members[b.rewards[members] > 0]
        chosen.append(win[0])
        rejected.append(members[members != win[0]][0])
    return torch.stack(chosen), torch.stack(rejected)


DPO_CASES = [
    ("dpo", {}, "sigmoid", {}),
    ("sigmoid_norm", {}, "sigmoid_norm", {}),
    ("ipo", {}, "ipo", {}),
    ("hinge", {}, "hinge", {}),
    ("robust", {"label_smoothing": 0.1}, "robust", {"label_smoothing": 0.1}),
    ("exo_pair", {}, "exo_pair", {"label_smoothing": 1e-3}),
    ("exo_pair", {"label_smoothing": 0.2}, "exo_pair", {"label_smoothing": 0.2}),
    ("discopop", {}, "discopop", {}),
    ("discopop", {"discopop_tau": 0.5}, "discopop", {"discopop_tau": 0.5}),
    ("aot", {}, "aot", {}),
    ("aot", {"label_smoothing": 0.1}, "aot", {"label_smoothing": 0.1}),
    ("bco_pair", {}, "bco_pair", {}),
    ("sppo_hard", {}, "sppo_hard", {}),
    ("nca_pair", {}, "nca_pair", {}),
    ("apo_zero", {}, "apo_zero", {}),
]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("beta", [0.1, 2.0])
@pytest.mark.parametrize(("name", "args", "loss_type", "trl_kw"), DPO_CASES)
def test_dpo_family_equals_trl(trl: ModuleType, seed, beta, name, args, loss_type, trl_kw) -> None:
    b = random_pairs(7, seed)
    out = ours(name, b, {"beta": beta, **args})
    leaf = _leaf(b)
    masked = leaf * b.mask
    ref_sums = (b.ref * b.mask).sum(dim=1)
    c, r = _pair_layout(b)
    theirs = trl.dpo_loss(
        loss_type, masked[c], masked[r], b.mask[c], b.mask[r], ref_sums[c], ref_sums[r],
        beta=beta, **trl_kw,
    )  # fmt: skip
    assert_exact(out, b, theirs, leaf)


def _unpaired(seed: int) -> RandomBatch:
    b = random_batch([1] * 9, seed)
    b.rewards = torch.where(b.rewards > 0, 1.0, -1.0).double()
    b.ref = b.logprobs.detach() - 0.2 * torch.rand_like(b.ref)  # mean Δ > 0: z0 not clamped
    return b


KTO_CASES = [("kto", "kto"), ("apo_zero_unpaired", "apo_zero_unpaired")]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(("name", "loss_type"), KTO_CASES)
def test_kto_equals_trl_with_mismatched_pairs(
    trl: ModuleType, seed: int, name: str, loss_type: str
) -> None:
    """z0 from the mismatched pairs' log-probs, as TRL estimates it, when not given."""
    b = _unpaired(seed)
    gen = torch.Generator().manual_seed(seed + 5)
    kl_logps = -5 * torch.rand(9, generator=gen, dtype=torch.float64)
    ref_kl_logps = kl_logps - 0.3 * torch.rand(9, generator=gen, dtype=torch.float64)
    args = {"beta": 0.3, "desirable_weight": 1.5, "undesirable_weight": 0.6}
    out = ours(name, b, args, kl_pairs=(kl_logps, ref_kl_logps))
    leaf = _leaf(b)
    theirs = trl.kto_loss(
        loss_type, leaf * b.mask, b.mask, (b.ref * b.mask).sum(dim=1), b.rewards > 0,
        kl_logps, ref_kl_logps, **args,
    )  # fmt: skip
    assert_exact(out, b, theirs, leaf)


CPO_CASES = [
    ("cpo", {}, "sigmoid", 1.0),
    ("cpo", {"label_smoothing": 0.1, "cpo_alpha": 0.5}, "sigmoid", 0.5),
    ("simpo", {}, "simpo", 0.0),
    ("simpo", {"simpo_gamma": 1.0, "cpo_alpha": 1.0, "label_smoothing": 0.1}, "simpo", 1.0),
]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("beta", [0.1, 2.0])
@pytest.mark.parametrize(("name", "args", "loss_type", "cpo_alpha"), CPO_CASES)
def test_cpo_and_simpo_equal_trl(
    trl: ModuleType, seed, beta, name, args, loss_type, cpo_alpha
) -> None:
    """CPOTrainer.cpo_loss on the pairs' log-probs (per token means for simpo, as its
    get_batch_logps averages them), plus cpo_alpha times the chosen tokens' NLL (TRL's
    CrossEntropyLoss mean over the chosen tokens, which needs logits: written out here)."""
    b = random_pairs(7, seed)
    out = ours(name, b, {"beta": beta, **args})
    leaf = _leaf(b)
    seqs = (leaf * b.mask).sum(dim=1)
    if loss_type == "simpo":
        seqs = seqs / b.mask.sum(dim=1)
    c, r = _pair_layout(b)
    kw = {k: v for k, v in args.items() if k in ("label_smoothing", "simpo_gamma")}
    losses = trl.cpo_losses(loss_type, seqs[c], seqs[r], beta=beta, **kw)
    nll = -(leaf * b.mask)[c].sum() / b.mask[c].sum()
    assert_exact(out, b, losses.mean() + cpo_alpha * nll, leaf)
