"""The validation study v2's design (bench.validation.design) and its tuning rule
(bench.validation.tuning): pure, fast."""

from __future__ import annotations

import dataclasses

import pytest

from bench.validation.design import (
    FULL,
    OFFLINE,
    ONLINE,
    QUICK,
    Budget,
    Grid,
    SizeBudget,
    estimate_minutes,
    plan,
)
from bench.validation.tuning import choose
from gro_core.methods import METHODS


def test_every_preset_the_issue_names_is_in_the_study_with_a_real_argument():
    assert set(ONLINE) == {"gro", "grpo", "dapo", "dr_grpo", "rloo", "remax", "reinforce_pp", "awr"}
    assert set(OFFLINE) == {"dpo", "ipo", "simpo", "kto", "cpl", "gro"}
    for grid in (*ONLINE.values(), *OFFLINE.values()):
        assert len(grid.lrs) >= 2
    for method, grid in (*ONLINE.items(), *OFFLINE.items()):
        if grid.beta_arg is not None:  # a typo here would only fail mid-study
            assert grid.beta_arg in {a.name for a in METHODS[method].args}, method


def test_grid_points_cover_lr_times_beta():
    grid = Grid((1e-4, 1e-3), "beta", (0.1, 0.3))
    assert grid.points() == [
        {"lr": 1e-4, "method_args": {"beta": 0.1}},
        {"lr": 1e-4, "method_args": {"beta": 0.3}},
        {"lr": 1e-3, "method_args": {"beta": 0.1}},
        {"lr": 1e-3, "method_args": {"beta": 0.3}},
    ]
    assert Grid((1e-4,)).points() == [{"lr": 1e-4, "method_args": {}}]


def test_tuning_seeds_are_never_reported_seeds():
    with pytest.raises(ValueError, match="disjoint"):
        dataclasses.replace(FULL, tuning_seeds=(2, 100))
    for budget in (FULL, QUICK):
        runs = plan(budget)
        tuning = {r.seed for r in runs if r.stage == "tuning"}
        reported = {r.seed for r in runs if r.stage == "reported"}
        assert tuning and reported and not tuning & reported


def test_small_model_runs_only_the_main_online_comparison():
    runs = plan(FULL)
    small = [r for r in runs if r.size == "small" and r.stage == "reported"]
    assert {r.group for r in small} == {"online"}
    assert {r.variant for r in small} == {"gro", "grpo", "rloo"}
    assert {r.task for r in small} == {"reverse"}
    tiny = {r.variant for r in runs if r.size == "tiny" and r.stage == "reported"}
    assert set(ONLINE) | set(OFFLINE) <= tiny
    assert {"gro anchor=none", "gro beta=2", "gro offline_mix=0.5", "ipo"} <= tiny
    assert {r.task for r in runs if r.size == "tiny"} == {"reverse", "arithmetic", "format"}
    # The cut: every grid is tuned on reverse only, the choice reused for every task.
    assert {r.task for r in runs if r.stage == "tuning"} == {"reverse"}


def _run(lr: float, seed: int, reward: float | None, kl: float = 1.0) -> dict:
    final = {} if reward is None else {"eval/reward": reward, "eval/kl_ref": kl}
    status = "failed" if reward is None else "succeeded"
    return {"point": {"lr": lr, "method_args": {}}, "seed": seed, "status": status, "final": final}


POINTS = [{"lr": lr, "method_args": {}} for lr in (1e-4, 3e-4, 1e-3)]


def test_tuning_picks_the_best_mean_final_reward():
    runs = [_run(1e-4, 0, 0.2), _run(1e-4, 1, 0.3), _run(3e-4, 0, 0.4), _run(3e-4, 1, 0.2)]
    runs += [_run(1e-3, 0, 0.1), _run(1e-3, 1, None)]
    choice = choose("gro", POINTS, runs)
    assert choice.point == POINTS[1]  # mean 0.30 against 0.25 and 0.10
    assert [p.failed for p in choice.grid] == [0, 0, 1]
    assert choice.grid[0].reward == pytest.approx(0.25)


def test_tuning_breaks_ties_by_lower_kl_and_never_picks_a_failed_point():
    runs = [_run(1e-4, 0, 0.3, kl=2.0), _run(3e-4, 0, 0.3, kl=0.5), _run(1e-3, 0, None)]
    assert choose("gro", POINTS, runs).point == POINTS[1]
    assert choose("gro", POINTS, [_run(1e-3, 0, None)]).point is None


def test_full_budget_estimate_scales_with_workers():
    small = Budget(
        "t", (0,), (9,), tuning_steps=2, batch_size=1, generations=1, eval_every=2,
        eval_prompts=1,
        sizes={"tiny": SizeBudget(10, 4, ONLINE, OFFLINE, {"gro f=exp": {}}, (0.5,), ("reverse",))},
    )  # fmt: skip
    step = {("tiny", "online"): 1.0, ("tiny", "offline"): 0.5, ("tiny", "sft"): 1.0}
    evals = {"tiny": 3.0}
    one = estimate_minutes(small, step, evals, workers=1, run_s={"tiny": 7.0})
    online_points = sum(len(g.points()) for g in ONLINE.values())
    offline_points = sum(len(g.points()) for g in OFFLINE.values())
    reported_online = len(ONLINE) + 2  # presets, the ablation, the mix share
    # Per run: steps x step seconds, 3 s per evaluation (2 per reported run: steps 2 and 4;
    # one for a tuning run and the warm-up), 7 s besides.
    warmup = 10 + 3 + 7
    tuning = online_points * (2 + 3 + 7) + offline_points * (1 + 3 + 7)
    reported = reported_online * (4 + 6 + 7) + len(OFFLINE) * (2 + 6 + 7)
    assert one == pytest.approx((warmup + tuning + reported) / 60)
    # Two workers halve every stage but the warm-up (a single run).
    assert estimate_minutes(small, step, evals, workers=2, run_s={"tiny": 7.0}) == pytest.approx(
        (warmup + (tuning + reported) / 2) / 60
    )
