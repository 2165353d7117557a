"""A comparison read at matched KL: its succeeded runs' evaluation curves, each variant's reward
at common KL values and paired differences against a baseline (gro_core.evaluation.frontier
holds the rule: first crossing, linear interpolation, never extrapolated)."""

from __future__ import annotations

import math

from sqlalchemy.orm import Session

from gro_core.evaluation.frontier import (
    KL_METRIC,
    REWARD_METRIC,
    RunCurve,
    common_kl_values,
    frontier,
    kl_grid,
    run_curve,
)
from server.db import comparisons as db_comparisons
from server.db.models import SUCCEEDED, Comparison
from server.db.series import read_series
from server.errors import InvalidRequestError
from server.schemas.comparisons import FrontierOut

MAX_AT_KL = 20
"""Most KL values one request may ask for: each costs a bootstrap per variant."""
MAX_EVALUATIONS = 10_000
"""Evaluations read per run and metric; a longer series is downsampled (its extremes kept)."""
LINE_POINTS = 21


def parse_at_kl(text: str | None) -> list[float] | None:
    """`0.1,0.5` as KL values, sorted without repeats; None for no parameter. Each must be a
    finite number >= 0, and there may be at most MAX_AT_KL of them."""
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    if not parts or len(parts) > MAX_AT_KL:
        raise _bad_at_kl(f"at most {MAX_AT_KL} comma-separated KL values, got {len(parts)}")
    values = []
    for part in parts:
        try:
            value = float(part)
        except ValueError:
            raise _bad_at_kl(f"{part!r} is not a number") from None
        if not math.isfinite(value) or value < 0:
            raise _bad_at_kl(f"{part!r}: a KL value is a finite number >= 0")
        values.append(value)
    return sorted(set(values))


def _bad_at_kl(message: str) -> InvalidRequestError:
    return InvalidRequestError("invalid_at_kl", f"at_kl: {message}", field="at_kl")


def comparison_curves(
    session: Session, comparison: Comparison, kl_metric: str, reward_metric: str
) -> list[RunCurve]:
    """One curve per succeeded job: its evaluations that logged both metrics."""
    curves = []
    for job in db_comparisons.comparison_jobs(session, comparison.id):
        if job.status != SUCCEEDED or job.variant is None or job.seed is None:
            continue
        kl, _ = read_series(session, job.id, kl_metric, MAX_EVALUATIONS)
        reward, _ = read_series(session, job.id, reward_metric, MAX_EVALUATIONS)
        curves.append(run_curve(job.variant, job.seed, dict(kl), dict(reward)))
    return curves


def comparison_frontier(
    session: Session,
    comparison: Comparison,
    at_kl: list[float] | None = None,
    baseline: str | None = None,
    kl_metric: str = KL_METRIC,
    reward_metric: str = REWARD_METRIC,
) -> FrontierOut:
    """The table at `at_kl` (default: four values up to the largest KL every run reached)
    against `baseline` (default: the first variant), and each variant's line for a chart."""
    labels = [v["label"] for v in comparison.variants]
    baseline = labels[0] if baseline is None else baseline
    if baseline not in labels:
        raise InvalidRequestError(
            "unknown_baseline",
            f"baseline: {baseline!r} is not a variant of this comparison ({', '.join(labels)})",
            field="baseline",
        )
    curves = comparison_curves(session, comparison, kl_metric, reward_metric)
    values = common_kl_values(curves) if at_kl is None else at_kl
    names = {"kl_metric": kl_metric, "reward_metric": reward_metric, "variants": labels}
    return FrontierOut(
        comparison_id=comparison.id,
        table=frontier(curves, values, baseline, **names),
        line=frontier(curves, kl_grid(curves, LINE_POINTS), None, **names),
        curves=curves,
    )
