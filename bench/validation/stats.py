"""Numbers the report shows, from the collected runs: per variant and metric the mean over
seeds with a 95% bootstrap interval, and the paired (same seed) difference against gro."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gro_core.stats import Interval, bootstrap_interval, paired_difference

BASELINE = "gro"


def samples_seen(run: dict[str, Any]) -> np.ndarray:
    return np.asarray(run["curve"]["steps"], dtype=float) * run["samples_per_step"]


def auc(run: dict[str, Any]) -> float | None:
    """Mean held-out reward over the run: the area under reward vs samples seen, divided by
    the samples seen (1.0 = perfect from the first sample on)."""
    x, y = samples_seen(run), np.asarray(run["curve"]["values"], dtype=float)
    if len(x) < 2 or np.isnan(y).any():
        return None
    return float(np.trapezoid(y, x) / (x[-1] - x[0]))


METRICS: dict[str, Callable[[dict[str, Any]], float | None]] = {
    "reward": lambda r: r["final"].get("eval/reward"),
    "auc": auc,
    "pass@G": lambda r: next(
        (v for k, v in r["final"].items() if k.startswith("eval/pass@") and k != "eval/pass@1"),
        None,
    ),
    "kl_ref": lambda r: r["final"].get("eval/kl_ref"),
    "distinct_2": lambda r: r["final"].get("eval/distinct_2"),
    "similarity": lambda r: r["final"].get("eval/pairwise_similarity"),
    "wall_s": lambda r: r["wall_s"],
}


def by_seed(runs: list[dict[str, Any]], metric: str) -> dict[int, float]:
    values = {r["seed"]: METRICS[metric](r) for r in runs if r["status"] == "succeeded"}
    return {seed: float(v) for seed, v in values.items() if v is not None}


def summarize(runs: list[dict[str, Any]], variants: list[str]) -> dict[str, dict[str, Any]]:
    """variant -> metric -> {interval, diff (vs gro), values}, over the seeds that succeeded."""
    grouped = {v: [r for r in runs if r["variant"] == v] for v in variants}
    baseline = grouped.get(BASELINE, [])
    table: dict[str, dict[str, Any]] = {}
    for variant, members in grouped.items():
        row: dict[str, Any] = {
            "n": sum(r["status"] == "succeeded" for r in members),
            "seeds": len(members),
        }
        for metric in METRICS:
            values = by_seed(members, metric)
            interval = bootstrap_interval(list(values.values())) if values else None
            diff = None
            if variant != BASELINE and values:
                diff = paired_difference(values, by_seed(baseline, metric))
            row[metric] = {"interval": interval, "diff": diff}
        table[variant] = row
    return table


def curve_band(runs: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(samples seen, mean, low, high) of the held-out reward curves of one variant's seeds:
    95% bootstrap band of the mean at each evaluation point."""
    done = [r for r in runs if r["status"] == "succeeded" and r["curve"]["steps"]]
    length = min(len(r["curve"]["steps"]) for r in done)
    x = samples_seen(done[0])[:length]
    y = np.array([r["curve"]["values"][:length] for r in done], dtype=float)  # (seeds, points)
    mean = y.mean(axis=0)
    if len(done) == 1:
        return x, mean, mean, mean
    rng = np.random.default_rng(0)
    picks = rng.integers(0, len(done), size=(2000, len(done)))
    means = y[picks].mean(axis=1)  # (2000, points)
    low, high = np.percentile(means, [2.5, 97.5], axis=0)
    return x, mean, low, high


def describe(interval: Interval | None, digits: int = 3) -> str:
    if interval is None:
        return "–"
    if interval.n == 1:
        return f"{interval.mean:.{digits}f}"
    return (
        f"{interval.mean:.{digits}f} [{interval.ci_low:.{digits}f}, {interval.ci_high:.{digits}f}]"
    )
