"""Intervals over seeds, shared by the API's comparisons and the validation study."""

from __future__ import annotations

import numpy as np
import pytest

from gro_core.stats import bootstrap_interval, paired_difference


def test_bootstrap_interval_matches_an_independent_resampling():
    values = [0.1, 0.4, 0.35, 0.8, 0.5]
    interval = bootstrap_interval(values)
    rng = np.random.default_rng(123)
    means = [np.mean(rng.choice(values, size=5)) for _ in range(20000)]
    low, high = np.percentile(means, [2.5, 97.5])
    assert interval.mean == pytest.approx(np.mean(values))
    assert interval.ci_low == pytest.approx(low, abs=0.02)
    assert interval.ci_high == pytest.approx(high, abs=0.02)
    single = bootstrap_interval([0.3])
    assert (single.ci_low, single.ci_high, single.n) == (0.3, 0.3, 1)
    assert paired_difference({0: 1.0}, {1: 0.0}) is None


def test_the_paired_difference_is_over_the_seeds_both_have():
    diff = paired_difference({0: 1.0, 1: 2.0, 2: 5.0}, {1: 1.5, 2: 4.0, 3: 9.0})
    assert diff is not None and diff.n == 2
    assert diff.mean == pytest.approx(((2.0 - 1.5) + (5.0 - 4.0)) / 2)
