"""Reward at matched KL: each run's (KL to reference, held-out reward) curve from its periodic
evaluations, read at common KL values, with paired differences against a baseline variant.

    curve = run_curve("gro", seed, kl_by_step, reward_by_step)   # eval/kl_ref, eval/reward
    table = frontier(curves, at_kl=[0.1, 0.5], baseline="grpo")
    table.variants[0].at_kl[0].reward                            # Interval over seeds, or None

Methods end at different distances from the start, so a comparison at equal steps rewards
whichever moved furthest; RLHF practice compares the reward reached at a given KL instead.

The rule, for one run and one KL value k (`reward_at_kl`):
- The run's evaluations are taken in step order; each consecutive pair is a segment.
- The reward at k is read on the *first* segment whose KL range contains k (first crossing),
  linearly interpolated between its two ends: the reward the run had when it first got that
  far from the reference, which is what stopping the run at that KL budget would keep. A KL
  curve that goes back down and crosses k again later does not change the answer.
- An evaluation exactly at k gives its own reward; a flat segment at k gives its first end's.
- Never extrapolated: k outside [min KL, max KL] of the run gives no reward, and the run is
  reported as not reached, with its largest KL.

Per variant and k, the reward is the mean over the seeds that reached k with its 95% bootstrap
interval (gro_core.stats), `reached` saying how many of the variant's runs that is; the paired
difference against the baseline uses the seeds where both reached k.

Pure Python and numpy (no torch): the API and the validation study (bench/validation) both use it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import pairwise

from pydantic import BaseModel, Field

from gro_core.stats import Interval, bootstrap_interval, paired_difference

KL_METRIC = "eval/kl_ref"
REWARD_METRIC = "eval/reward"


class RunCurve(BaseModel):
    """One run's evaluations in step order: only steps with a finite KL and reward."""

    variant: str
    seed: int
    steps: list[int]
    kl: list[float]
    reward: list[float]

    @property
    def max_kl(self) -> float | None:
        return max(self.kl) if self.kl else None


class RunAtKL(BaseModel):
    """One run read at one KL value."""

    seed: int
    reward: float | None = Field(description="None: the run never reached this KL")
    reached: bool
    max_kl: float | None = Field(description="the largest KL the run reached")


class PointAtKL(BaseModel):
    """One variant at one KL value, over its seeds."""

    kl: float
    reward: Interval | None = Field(description="over the seeds that reached this KL; None if none")
    reached: int = Field(description="how many of the variant's runs reached this KL")
    runs: list[RunAtKL]
    diff: Interval | None = Field(
        None, description="paired (same seed) difference against the baseline, where both reached"
    )


class VariantFrontier(BaseModel):
    variant: str
    runs: int
    max_kl: float | None = Field(description="the largest KL any of its runs reached")
    at_kl: list[PointAtKL]


class Frontier(BaseModel):
    kl_metric: str
    reward_metric: str
    baseline: str | None
    at_kl: list[float]
    variants: list[VariantFrontier]


def run_curve(
    variant: str,
    seed: int,
    kl: Mapping[int, float | None],
    reward: Mapping[int, float | None],
) -> RunCurve:
    """The curve of the steps that have both a finite KL and a finite reward, by step."""
    steps = sorted(s for s in kl.keys() & reward.keys() if _finite(kl[s]) and _finite(reward[s]))
    return RunCurve(
        variant=variant,
        seed=seed,
        steps=steps,
        kl=[float(kl[s]) for s in steps],  # type: ignore[arg-type]
        reward=[float(reward[s]) for s in steps],  # type: ignore[arg-type]
    )


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def reward_at_kl(curve: RunCurve, kl: float) -> float | None:
    """The reward at the first crossing of `kl` in step order, interpolated linearly between
    the two evaluations around it; None when `kl` is outside the run's KL range."""
    points = list(zip(curve.kl, curve.reward, strict=True))
    if len(points) == 1 and points[0][0] == kl:
        return points[0][1]
    for (k0, r0), (k1, r1) in pairwise(points):
        if min(k0, k1) <= kl <= max(k0, k1):
            if k0 == k1:  # a flat segment at kl: its first evaluation
                return r0
            t = (kl - k0) / (k1 - k0)
            return r0 + t * (r1 - r0)
    return None


def read_run(curve: RunCurve, kl: float) -> RunAtKL:
    reward = reward_at_kl(curve, kl)
    return RunAtKL(seed=curve.seed, reward=reward, reached=reward is not None, max_kl=curve.max_kl)


def point_at_kl(
    curves: Sequence[RunCurve], kl: float, baseline: Sequence[RunCurve] | None = None
) -> PointAtKL:
    """One variant's runs at `kl`; with `baseline` (its runs), the paired difference."""
    runs = [read_run(c, kl) for c in sorted(curves, key=lambda c: c.seed)]
    by_seed = {r.seed: r.reward for r in runs if r.reward is not None}
    diff = None
    if baseline is not None:
        base = {c.seed: r for c in baseline if (r := reward_at_kl(c, kl)) is not None}
        diff = paired_difference(by_seed, base)
    reward = bootstrap_interval(list(by_seed.values())) if by_seed else None
    return PointAtKL(kl=kl, reward=reward, reached=len(by_seed), runs=runs, diff=diff)


def common_kl_values(curves: Sequence[RunCurve], count: int = 4) -> list[float]:
    """`count` KL values evenly spaced up to the largest KL *every* run reached (so each is
    reached by all of them, when each run starts at KL 0); [] when a run has no evaluation."""
    maxima = [c.max_kl for c in curves]
    if not maxima or any(m is None for m in maxima):
        return []
    top = min(m for m in maxima if m is not None)
    return [top * (i + 1) / count for i in range(count)] if top > 0 else [0.0]


def kl_grid(curves: Sequence[RunCurve], points: int = 21) -> list[float]:
    """`points` KL values evenly spaced from 0 to the largest KL any run reached: where a
    chart draws each variant's frontier."""
    maxima = [c.max_kl for c in curves if c.max_kl is not None]
    top = max(maxima, default=0.0)
    if top <= 0:
        return [0.0]
    return [top * i / (points - 1) for i in range(points)]


def frontier(
    curves: Sequence[RunCurve],
    at_kl: Sequence[float],
    baseline: str | None = None,
    variants: Sequence[str] | None = None,
    kl_metric: str = KL_METRIC,
    reward_metric: str = REWARD_METRIC,
) -> Frontier:
    """Every variant (in `variants` order, else first appearance) read at each of `at_kl`,
    with paired differences against `baseline` (none for the baseline itself)."""
    order = (
        list(variants) if variants is not None else list(dict.fromkeys(c.variant for c in curves))
    )
    if baseline is not None and baseline not in order:
        raise ValueError(f"baseline {baseline!r} is not one of the variants {order}")
    grouped = {v: [c for c in curves if c.variant == v] for v in order}
    base = grouped[baseline] if baseline is not None else None
    out = []
    for variant in order:
        runs = grouped[variant]
        paired = base if variant != baseline else None
        maxima = [c.max_kl for c in runs if c.max_kl is not None]
        out.append(
            VariantFrontier(
                variant=variant,
                runs=len(runs),
                max_kl=max(maxima, default=None),
                at_kl=[point_at_kl(runs, float(k), paired) for k in at_kl],
            )
        )
    return Frontier(
        kl_metric=kl_metric,
        reward_metric=reward_metric,
        baseline=baseline,
        at_kl=[float(k) for k in at_kl],
        variants=out,
    )
