"""Properties of gro_loss beyond the presets: masking, invariances, dtypes, diagnostics."""

from __future__ import annotations

import itertools

import pytest
import torch

from gro_core.methods import get_preset
from gro_core.objective.config import GROConfig
from gro_core.objective.loss import gro_loss
from tests.gro_core import reference_losses as ref
from tests.gro_core.test_presets import RandomBatch, assert_same_grad, grad_of, random_batch


def run(cfg: GROConfig, b: RandomBatch, **kwargs):
    defaults = dict(
        logprobs=b.logprobs,
        mask=b.mask,
        rewards=b.rewards,
        group_ids=b.group_ids,
        old_logprobs=b.old,
        ref_logprobs=b.ref,
    )
    return gro_loss(cfg, **(defaults | kwargs))


@pytest.mark.parametrize("preset", ["dpo", "kto", "cpl", "rloo", "grpo", "reinforce_pp", "gro"])
def test_padding_beyond_the_mask_changes_nothing(preset: str) -> None:
    sizes = {"dpo": [2] * 4, "cpl": [2] * 4, "kto": [1] * 8}.get(preset, [3, 5])
    b = random_batch(sizes, 4)
    if preset in ("dpo", "cpl", "kto"):
        b.rewards = torch.tensor([1.0, -1.0] * 4, dtype=torch.float64)
    cfg = get_preset(preset)
    clean = run(cfg, b)
    g_clean = grad_of(clean.loss, b)
    pad = ~b.mask
    noisy = RandomBatch(
        logprobs=b.logprobs.detach().masked_fill(pad, float("nan")).requires_grad_(),
        old=b.old.masked_fill(pad, float("inf")),
        ref=b.ref.masked_fill(pad, -float("inf")),
        mask=b.mask,
        rewards=b.rewards,
        group_ids=b.group_ids,
    )
    dirty = run(cfg, noisy)
    g_dirty = grad_of(dirty.loss, noisy)
    assert torch.equal(clean.loss, dirty.loss)
    assert torch.equal(g_clean, g_dirty)
    assert torch.all(g_dirty[pad] == 0)
    assert all(v == v for v in dirty.stats.values()), "a NaN reached the diagnostics"


@pytest.mark.parametrize("preset", ["rloo", "grpo", "gro"])
def test_group_with_equal_rewards_gives_zero_gradient(preset: str) -> None:
    b = random_batch([4, 3], 5)
    flat = b.group_ids == b.group_ids[0]
    b.rewards = torch.where(flat, 0.7, b.rewards)
    out = run(get_preset(preset, kl_coef=0.0) if preset != "gro" else get_preset("gro"), b)
    grad = grad_of(out.loss, b)
    assert torch.all(grad[flat] == 0)
    assert grad[~flat].abs().max() > 0
    assert out.stats["gro/zero_var_groups"] == pytest.approx(0.5)


def test_grpo_at_ratio_one_without_kl_is_reinforce_with_group_normalised_advantages() -> None:
    b = random_batch([4, 2, 5], 6)
    out = run(get_preset("grpo", kl_coef=0.0), b, old_logprobs=None, ref_logprobs=None)
    adv = ref.group_normalised(b.rewards, b.group_ids)
    terms = [-adv[i] * ref.seq_sum(b.logprobs, b.mask, i) / b.mask[i].sum() for i in range(11)]
    assert_same_grad(grad_of(out.loss, b), grad_of(torch.stack(terms).mean(), b))


def _gro_weight_when_moved(shift: float, reward_sign: float) -> float:
    """Weight of completion 0 after moving its log-likelihood by `shift` per token."""
    mask = torch.ones(4, 3, dtype=torch.bool)
    lp = torch.full((4, 3), -1.0, dtype=torch.float64)
    lp[0] += shift
    rewards = torch.tensor([1.0, -1.0, 1.0, -1.0], dtype=torch.float64) * reward_sign
    out = gro_loss(
        get_preset("gro"),
        logprobs=lp,
        mask=mask,
        rewards=rewards,
        group_ids=torch.zeros(4, dtype=torch.long),
    )
    return float(out.weights[0])


@pytest.mark.parametrize("reward_sign", [1.0, -1.0])
def test_gro_weight_falls_as_a_completion_separates_from_its_anchor(reward_sign: float) -> None:
    # A positive completion separates by rising above its anchor, a negative one by falling.
    shifts = [0.0, 0.5, 1.0, 2.0, 4.0]
    weights = [_gro_weight_when_moved(reward_sign * s, reward_sign) for s in shifts]
    assert weights[0] == pytest.approx(0.5)
    assert all(a > b for a, b in itertools.pairwise(weights))


def test_awr_weights_are_clipped() -> None:
    b = random_batch([6], 7)
    b.rewards = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 100.0], dtype=torch.float64)
    out = run(get_preset("awr", tau=0.1, max_weight=5.0), b)
    assert out.coefficients.max() == pytest.approx(5.0)
    assert torch.all(out.coefficients <= 5.0)


@pytest.mark.parametrize("preset", ["dpo", "grpo", "gro", "reinforce_pp"])
def test_bfloat16_inputs_give_a_finite_loss_close_to_float32(preset: str) -> None:
    b = random_batch([2] * 8, 8, width=64)
    b.rewards = torch.tensor([1.0, -1.0] * 8, dtype=torch.float64)
    cfg = get_preset(preset)

    def loss_in(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        lp = b.logprobs.detach().to(dtype).requires_grad_()
        out = gro_loss(
            cfg,
            logprobs=lp,
            mask=b.mask,
            rewards=b.rewards.to(dtype),
            group_ids=b.group_ids,
            old_logprobs=b.old.to(dtype),
            ref_logprobs=b.ref.to(dtype),
        )
        (grad,) = torch.autograd.grad(out.loss, lp)
        return out.loss, grad

    loss32, grad32 = loss_in(torch.float32)
    loss16, grad16 = loss_in(torch.bfloat16)
    assert torch.isfinite(loss16) and grad16.dtype == torch.bfloat16
    assert float(loss16.detach()) == pytest.approx(float(loss32.detach()), rel=0.05, abs=1e-3)
    cos = torch.nn.functional.cosine_similarity(grad16.float().flatten(), grad32.flatten(), dim=0)
    assert cos > 0.99


def test_inputs_are_not_modified_in_place() -> None:
    b = random_batch([3, 4], 9)
    before = [t.detach().clone() for t in (b.logprobs, b.old, b.ref, b.rewards, b.group_ids)]
    for preset in ("rloo", "grpo", "reinforce_pp", "gro"):
        run(get_preset(preset), b).loss.backward()
    after = [b.logprobs.detach(), b.old, b.ref, b.rewards, b.group_ids]
    assert all(torch.equal(x, y) for x, y in zip(before, after, strict=True))


def test_old_logprobs_none_means_ratio_one() -> None:
    b = random_batch([3, 3], 10)
    implicit = run(get_preset("grpo"), b, old_logprobs=None)
    explicit = run(get_preset("grpo"), b, old_logprobs=b.logprobs.detach())
    assert torch.allclose(grad_of(implicit.loss, b), grad_of(explicit.loss, b), rtol=1e-12)
    assert implicit.stats["gro/clip_frac"] == 0.0
    assert implicit.stats["kl/old"] == pytest.approx(0.0, abs=1e-12)


def test_diagnostics_report_what_the_dashboard_shows() -> None:
    b = random_batch([3, 4, 1, 6], 0)
    out = run(get_preset("grpo"), b)
    for key in (
        "loss/policy",
        "loss/kl",
        "reward/mean",
        "adv/mean",
        "adv/std",
        "kl/old",
        "kl/ref",
        "gro/anchor_distance/mean",
        "gro/weight/mean",
        "gro/coef/mean",
        "gro/clip_frac",
        "gro/zero_var_groups",
    ):
        assert isinstance(out.stats[key], float), key
    n = len(b.rewards)
    for tensor in (out.advantages, out.anchor_distances, out.weights, out.coefficients):
        assert tensor.shape == (n,) and not tensor.requires_grad
    ratio = torch.exp(b.logprobs.detach() - b.old)
    adv = ref.group_normalised(b.rewards, b.group_ids)[:, None]
    clipped = ((adv > 0) & (ratio > 1.2)) | ((adv < 0) & (ratio < 0.8))
    assert out.stats["gro/clip_frac"] == pytest.approx(float(clipped[b.mask].double().mean()))
    diff = b.ref - b.logprobs.detach()
    k3 = (torch.exp(diff) - diff - 1)[b.mask].mean()
    assert out.stats["kl/ref"] == pytest.approx(float(k3))


# --- components outside the presets, against the objective written out by hand -----------


def _generic_reference(b: RandomBatch, coef: torch.Tensor, norm: torch.Tensor) -> torch.Tensor:
    """−Σ_i norm_i · coef_i · ℓ_i for sequence-level coefficients."""
    terms = [norm[i] * coef[i] * ref.seq_sum(b.logprobs, b.mask, i) for i in range(len(coef))]
    return -torch.stack(terms).sum()


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_group_norm_scales(scale: str) -> None:
    b = random_batch([3, 4, 5], 11)
    out = run(GROConfig(advantage="group_norm", adv_scale=scale, anchor="none", weight="one"), b)
    adv = torch.zeros_like(b.rewards)
    for members in ref.group_lists(b.group_ids):
        centred = b.rewards[members] - b.rewards[members].mean()
        divisor = {
            "group": b.rewards[members].std() + 1e-4,
            "batch": b.rewards.std() + 1e-4,
            "none": 1.0,
        }[scale]
        adv[members] = centred / divisor
    n = len(adv)
    assert_same_grad(grad_of(out.loss, b), grad_of(_generic_reference(b, adv, [1 / n] * n), b))


@pytest.mark.parametrize("aggregation", ["token_mean", "seq_sum_norm", "group_mean"])
def test_aggregations(aggregation: str) -> None:
    b = random_batch([2, 3, 4], 12)
    cfg = GROConfig(
        advantage="raw", anchor="none", weight="one", aggregation=aggregation, max_len=20
    )
    n, total = len(b.rewards), int(b.mask.sum())
    norm = {"token_mean": 1 / total, "seq_sum_norm": 1 / (n * 20), "group_mean": 1 / 3}
    expected = _generic_reference(b, b.rewards, [norm[aggregation]] * n)
    assert_same_grad(grad_of(run(cfg, b).loss, b), grad_of(expected, b))


def test_group_mean_anchor_with_sigmoid_weight_and_side_weights() -> None:
    b = random_batch([3, 4], 13)
    cfg = GROConfig(
        advantage="raw",
        anchor="group_mean",
        x="log_ratio",
        x_token_mean=False,
        weight="sigmoid",
        beta=0.5,
        f_scale=2.0,
        pos_weight=1.5,
        neg_weight=0.5,
    )
    delta = [float(ref.seq_sum(b.logprobs.detach() - b.ref, b.mask, i)) for i in range(7)]
    coef = []
    for members in ref.group_lists(b.group_ids):
        for i in members:
            others = [delta[j] for j in members if j != i]
            d = delta[i] - sum(others) / len(others)
            r = float(b.rewards[i])
            s = (r > 0) - (r < 0)
            w = 1 / (1 + torch.exp(torch.tensor(0.5 * s * d, dtype=torch.float64)))
            coef.append((i, w * 2.0 * r * (1.5 if r >= 0 else 0.5)))
    coef_t = torch.zeros(7, dtype=torch.float64)
    for i, c in coef:
        coef_t[i] = c
    expected = _generic_reference(b, coef_t, [1 / 7] * 7)
    assert_same_grad(grad_of(run(cfg, b).loss, b), grad_of(expected, b))


def test_kl_in_reward_lowers_the_reward_of_completions_far_from_the_reference() -> None:
    b = random_batch([4], 14)
    b.rewards = torch.zeros(4, dtype=torch.float64)
    b.ref = b.old.clone()
    b.ref[0] -= 1.0  # completion 0's old log-probs sit far above the reference's
    out = run(get_preset("rloo", kl_coef=0.1), b)
    assert out.rewards[0] == pytest.approx(-0.1 * float(b.mask[0].sum()))
    assert torch.all(out.rewards[1:] == 0)


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"anchor": "nearest"}, "unknown anchor 'nearest'; choose one of"),
        ({"advantage": "gae"}, "unknown advantage"),
        ({"weight": "tanh"}, "unknown weight"),
        ({"aggregation": "sum"}, "unknown aggregation"),
        ({"f": "log"}, "unknown f"),
        ({"beta": -1.0}, "beta must be >= 0"),
        ({"epsilon_low": 1.5}, "epsilon_low must be in (0, 1)"),
        ({"epsilon_high": 0.0}, "epsilon_high must be > 0"),
        ({"delta": 0.9}, "delta must be > 1"),
        ({"label_smoothing": 0.5}, "label_smoothing must be in [0, 0.5)"),
        ({"weight": "exo", "anchor": "pair"}, "needs label_smoothing > 0"),
        ({"weight": "sapo", "anchor": "pair"}, "use anchor 'old', 'old_seq'"),
        ({"kl_coef": -0.1}, "kl_coef must be >= 0"),
        ({"tau": 0.0}, "tau must be > 0"),
        ({"weight": "clip", "anchor": "opposite"}, "use anchor 'old', 'old_seq'"),
        ({"anchor": "kl_point", "x": "log_likelihood"}, "set x='log_ratio'"),
        ({"advantage": "reinforce_pp", "anchor": "opposite"}, "use anchor='old' or 'none'"),
    ],
)
def test_invalid_configs_say_how_to_fix_them(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=__import__("re").escape(message)):
        GROConfig(**kwargs)


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("dpo", {"beta": -0.1}, "dpo: beta must be > 0"),
        ("grpo", {"epsilon": 1.2}, "grpo: epsilon_low must be in (0, 1)"),
        ("gro", {"beta": -1.0}, "gro: beta must be >= 0"),
        ("dpo", {"gamma": 1.0}, "dpo: unknown argument(s) gamma"),
        ("ppo", {}, "unknown preset 'ppo'"),
        ("kto", {"beta": "high"}, "kto: bad argument type"),
    ],
)
def test_bad_preset_arguments(name: str, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=__import__("re").escape(message)):
        get_preset(name, **kwargs)


def test_preset_overrides_reach_the_config() -> None:
    cfg = get_preset("gro", beta=0.3, anchor="group_mean", f="exp")
    assert (cfg.beta, cfg.anchor, cfg.f, cfg.name) == (0.3, "group_mean", "exp", "gro")
    assert get_preset("dpo", beta=0.2).f_scale == 0.2
    assert get_preset("grpo", epsilon_high=0.28).epsilon_high == 0.28


def test_rloo_refuses_a_group_of_one() -> None:
    b = random_batch([3, 1], 15)
    with pytest.raises(ValueError, match="at least 2 completions per group"):
        run(get_preset("rloo"), b)


def test_pair_anchor_refuses_groups_that_are_not_pairs() -> None:
    b = random_batch([2, 3], 16)
    with pytest.raises(ValueError, match="groups of exactly 2"):
        run(get_preset("dpo"), b)


@pytest.mark.parametrize(
    ("preset", "missing", "name"),
    [
        ("dpo", "ref_logprobs", "ref_logprobs"),
        ("kto", "ref_logprobs", "ref_logprobs"),
        ("grpo", "ref_logprobs", "ref_logprobs"),
        ("remax", None, "baseline_rewards"),
    ],
)
def test_missing_inputs_are_named(preset: str, missing: str | None, name: str) -> None:
    b = random_batch([2, 2], 17)
    kwargs = {missing: None} if missing else {}
    with pytest.raises(ValueError, match=name):
        run(get_preset(preset), b, **kwargs)


def test_a_kl_free_grpo_needs_no_reference() -> None:
    b = random_batch([2, 2], 18)
    assert not get_preset("grpo", kl_coef=0.0).needs_reference
    run(get_preset("grpo", kl_coef=0.0), b, ref_logprobs=None)


def test_shape_mismatch_is_reported() -> None:
    b = random_batch([2, 2], 19)
    with pytest.raises(ValueError, match="mask must have the shape"):
        run(get_preset("gro"), b, mask=b.mask[:, :3])
    with pytest.raises(ValueError, match="rewards must be given"):
        run(get_preset("gro"), b, rewards=None)
