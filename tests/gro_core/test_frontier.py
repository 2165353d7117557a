"""Reward at matched KL (gro_core.evaluation.frontier), against interpolation done by hand."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from gro_core.evaluation.frontier import (
    RunCurve,
    common_kl_values,
    frontier,
    kl_grid,
    reward_at_kl,
    run_curve,
)


def curve(kl: list[float], reward: list[float], variant: str = "v", seed: int = 0) -> RunCurve:
    steps = [10 * i for i in range(len(kl))]
    return run_curve(
        variant, seed, dict(zip(steps, kl, strict=True)), dict(zip(steps, reward, strict=True))
    )


def test_reward_is_interpolated_linearly_between_the_evaluations_around_the_kl() -> None:
    c = curve([0.0, 0.2, 0.6], [0.1, 0.3, 0.5])
    # (0.4 − 0.2) / (0.6 − 0.2) = 0.5 of the way from 0.3 to 0.5
    assert reward_at_kl(c, 0.4) == pytest.approx(0.4)
    assert reward_at_kl(c, 0.1) == pytest.approx(0.2)
    assert reward_at_kl(c, 0.05) == pytest.approx(0.15)  # a quarter of the way from 0.1 to 0.3


def test_an_evaluation_exactly_at_the_kl_gives_its_own_reward() -> None:
    c = curve([0.0, 0.2, 0.6], [0.1, 0.3, 0.5])
    assert reward_at_kl(c, 0.0) == pytest.approx(0.1)
    assert reward_at_kl(c, 0.2) == pytest.approx(0.3)
    assert reward_at_kl(c, 0.6) == pytest.approx(0.5)
    assert reward_at_kl(curve([0.0], [0.7]), 0.0) == pytest.approx(0.7)


def test_a_kl_outside_the_runs_range_is_never_extrapolated() -> None:
    c = curve([0.1, 0.2, 0.6], [0.1, 0.3, 0.5])
    assert reward_at_kl(c, 0.61) is None
    assert reward_at_kl(c, 0.05) is None
    assert reward_at_kl(curve([], []), 0.0) is None


def test_a_non_monotone_kl_curve_is_read_at_its_first_crossing() -> None:
    # KL rises to 0.5, falls back to 0.2, then rises to 0.9.
    c = curve([0.0, 0.5, 0.2, 0.9], [0.0, 1.0, 0.2, 0.6])
    # 0.3 is crossed three times; the first (0 -> 0.5) counts: 0.6 of the way from 0 to 1.
    assert reward_at_kl(c, 0.3) == pytest.approx(0.6)
    # 0.7 is crossed only on the last segment (0.2 -> 0.9): 5/7 of the way from 0.2 to 0.6.
    assert reward_at_kl(c, 0.7) == pytest.approx(0.2 + 5 / 7 * 0.4)


def test_a_flat_segment_at_the_kl_gives_its_first_evaluation() -> None:
    c = curve([0.1, 0.3, 0.3, 0.5], [0.0, 0.6, 0.9, 1.0])
    assert reward_at_kl(c, 0.3) == pytest.approx(0.6)
    flat = curve([0.3, 0.3], [0.4, 0.8])
    assert reward_at_kl(flat, 0.3) == pytest.approx(0.4)


def test_the_curve_keeps_steps_with_a_finite_kl_and_reward_in_step_order() -> None:
    c = run_curve(
        "v",
        3,
        {20: 0.4, 0: 0.0, 10: float("nan"), 30: 0.9, 40: 1.0},
        {0: 0.1, 10: 0.2, 20: 0.5, 30: None, 50: 0.7},
    )
    assert (c.steps, c.kl, c.reward) == ([0, 20], [0.0, 0.4], [0.1, 0.5])
    assert c.max_kl == 0.4


def _runs() -> list[RunCurve]:
    base = [
        curve([0.0, 0.4, 0.8], [0.0, 0.2, 0.4], "base", 0),
        curve([0.0, 0.5, 1.0], [0.1, 0.3, 0.5], "base", 1),
        curve([0.0, 0.2, 0.6], [0.0, 0.4, 0.6], "base", 2),
    ]
    new = [
        curve([0.0, 1.0], [0.0, 1.0], "new", 0),
        curve([0.0, 0.25], [0.2, 0.7], "new", 1),  # never reaches 0.5
        curve([0.0, 2.0], [0.0, 0.8], "new", 2),
    ]
    return base + new


def test_each_variant_is_averaged_over_the_seeds_that_reached_the_kl() -> None:
    table = frontier(_runs(), at_kl=[0.5], baseline="base")
    base, new = table.variants
    # base at 0.5: seed 0 0.2 + (0.1/0.4)·0.2 = 0.25, seed 1 0.3, seed 2 0.4 + (0.3/0.4)·0.2 = 0.55
    point = base.at_kl[0]
    assert [r.reward for r in point.runs] == pytest.approx([0.25, 0.3, 0.55])
    assert point.reward is not None and point.reward.mean == pytest.approx((0.25 + 0.3 + 0.55) / 3)
    assert (point.reached, point.diff) == (3, None)
    # new at 0.5: seed 0 0.5, seed 1 not reached (its KL stops at 0.25), seed 2 0.2
    point = new.at_kl[0]
    assert [r.reached for r in point.runs] == [True, False, True]
    assert point.runs[1].reward is None and point.runs[1].max_kl == 0.25
    assert point.reached == 2 and point.reward is not None
    assert point.reward.mean == pytest.approx(0.35) and point.reward.n == 2
    # paired by seed, where both reached: (0.5 − 0.25, 0.2 − 0.55)
    assert point.diff is not None and point.diff.n == 2
    assert point.diff.mean == pytest.approx(((0.5 - 0.25) + (0.2 - 0.55)) / 2)
    assert (new.runs, new.max_kl) == (3, 2.0)


def test_the_paired_interval_is_the_bootstrap_of_the_per_seed_differences() -> None:
    table = frontier(_runs(), at_kl=[0.1], baseline="base")
    diff = table.variants[1].at_kl[0].diff
    assert diff is not None
    # Independently: resample the three per-seed differences, same seed and sample count.
    base = [0.05, 0.1 + 0.2 * 0.2, 0.2]
    new = [0.1, 0.2 + 0.4 * 0.5, 0.04]
    diffs = np.array(new) - np.array(base)
    picks = np.random.default_rng(0).integers(0, 3, size=(4000, 3))
    low, high = np.percentile(diffs[picks].mean(axis=1), [2.5, 97.5])
    assert (diff.mean, diff.ci_low, diff.ci_high) == pytest.approx((diffs.mean(), low, high))


def test_a_kl_no_seed_reached_has_no_reward_and_no_difference() -> None:
    point = frontier(_runs(), at_kl=[5.0], baseline="base").variants[1].at_kl[0]
    assert (point.reward, point.diff, point.reached) == (None, None, 0)
    assert [r.max_kl for r in point.runs] == [1.0, 0.25, 2.0]


def test_variants_come_in_the_given_order_and_an_unknown_baseline_is_refused() -> None:
    table = frontier(_runs(), at_kl=[0.1], variants=["new", "base", "absent"])
    assert [v.variant for v in table.variants] == ["new", "base", "absent"]
    assert table.variants[2].runs == 0 and table.variants[2].at_kl[0].reward is None
    with pytest.raises(ValueError, match="baseline 'other'"):
        frontier(_runs(), at_kl=[0.1], baseline="other")


def test_common_kl_values_stop_at_the_largest_kl_every_run_reached() -> None:
    runs = _runs()
    assert common_kl_values(runs) == pytest.approx([0.0625, 0.125, 0.1875, 0.25])
    table = frontier(runs, at_kl=common_kl_values(runs), baseline="base")
    assert all(p.reached == 3 for v in table.variants for p in v.at_kl)
    assert common_kl_values([*runs, curve([], [])]) == []
    assert kl_grid(runs, points=5) == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0])


def test_the_module_imports_without_torch() -> None:
    code = "import sys, gro_core.evaluation.frontier; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
