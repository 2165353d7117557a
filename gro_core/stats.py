"""Statistics over seeds: means with 95% percentile-bootstrap intervals, and paired differences.

Torch-free: the API summarises comparisons with it, and the validation study (a client of the
API, bench/validation) its own tables, so both report the same intervals.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel

BOOTSTRAP_SAMPLES = 4000


class Interval(BaseModel):
    """A mean and its interval over `n` values (seeds)."""

    mean: float
    ci_low: float
    ci_high: float
    n: int


def bootstrap_interval(values: Sequence[float], level: float = 0.95, seed: int = 0) -> Interval:
    """Mean of `values` and the percentile bootstrap interval of the mean.

    Seeded, so the same values always give the same interval. One value gives a zero-width
    interval: with one seed there is no spread to estimate, and the table shows n = 1.
    """
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        raise ValueError("no values")
    mean = float(data.mean())
    if data.size == 1:
        return Interval(mean=mean, ci_low=mean, ci_high=mean, n=1)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, data.size, size=(BOOTSTRAP_SAMPLES, data.size))
    means = data[picks].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Interval(mean=mean, ci_low=float(low), ci_high=float(high), n=int(data.size))


def paired_difference(values: dict[int, float], baseline: dict[int, float]) -> Interval | None:
    """Interval of mean(value − baseline) over the seeds both have; None when they share none."""
    seeds = sorted(values.keys() & baseline.keys())
    if not seeds:
        return None
    return bootstrap_interval([values[s] - baseline[s] for s in seeds])
