"""Pure shaping of API answers into DataFrames for the pages and charts (no I/O, no Streamlit).

Metric frames are long: one row per (run, name, step) with a `value`; the x-axis a chart
draws is the column `x`, added by `with_x` (steps, or the trainer's own samples-seen and
wall-clock series).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

METRIC_COLUMNS = ["run", "name", "step", "value"]
ELAPSED = "time/elapsed_s"
"""The trainer's per-step wall clock: seconds of training since the run started."""
SAMPLES = "train/samples"
"""The trainer's cumulative count of examples trained on (completions, rows or pairs)."""
AXIS_METRICS = {"samples": SAMPLES, "wall": ELAPSED}
"""The x-axes read from a metric series of each run, and that series."""
FINAL_REWARD_KEYS = ("eval/reward", "eval/accuracy", "eval/pref_accuracy", "reward/mean")
"""What "final reward" means in the jobs table, in order of preference."""


# --- metric series -------------------------------------------------------------------------


def series_frame(answer: Mapping[str, Any], run: str) -> pd.DataFrame:
    """The `series` of a GET /v1/jobs/{id}/metrics answer as long rows for run `run`."""
    parts = [
        pd.DataFrame({"name": name, "step": s["steps"], "value": s["values"]})
        for name, s in answer.get("series", {}).items()
        if s["steps"]
    ]
    if not parts:
        return pd.DataFrame(columns=METRIC_COLUMNS)
    frame = pd.concat(parts, ignore_index=True)
    frame.insert(0, "run", run)
    frame["value"] = frame["value"].astype("float64")  # JSON null (non-finite) becomes NaN
    return frame


def ema(values: Sequence[float] | np.ndarray, weight: float) -> np.ndarray:
    """Exponential moving average s_t = w·s_(t-1) + (1 − w)·x_t, debiased like TensorBoard's
    (divided by 1 − w^t so the first points are not pulled towards 0). NaNs are skipped and
    stay NaN."""
    x = pd.Series(np.asarray(values, dtype=np.float64))
    if weight <= 0:
        return x.to_numpy(copy=True)
    # pandas' adjusted EWM is exactly the debiased average: Σ w^i x_(t−i) / Σ w^i.
    smoothed = x.ewm(alpha=1 - weight, adjust=True, ignore_na=True).mean()
    return smoothed.where(x.notna()).to_numpy()


def smooth(frame: pd.DataFrame, weight: float, by: Sequence[str] = ("run", "name")) -> pd.DataFrame:
    """`frame` with `value` replaced by its EMA within each group, in step order."""
    if weight <= 0 or frame.empty:
        return frame
    out = frame.sort_values([*by, "step"])
    ewm = out.groupby(list(by), sort=False)["value"].ewm(
        alpha=1 - weight, adjust=True, ignore_na=True
    )
    smoothed = ewm.mean().reset_index(level=list(range(len(by))), drop=True)
    return out.assign(value=smoothed.where(out["value"].notna()))


def with_x(frame: pd.DataFrame, axis: str) -> tuple[pd.DataFrame, list[str]]:
    """`frame` with an `x` column for `axis` (step | samples | wall), and the runs dropped
    because they lack the series that axis reads (`train/samples`, `time/elapsed_s`).

    Samples seen and wall time are the run's value of that series at each point's step,
    interpolated between the steps where it was recorded (downsampling keeps different
    steps per series). The axis series themselves are not drawn.
    """
    out = frame[~frame["name"].isin(AXIS_METRICS.values())].copy()
    if axis == "step":
        out["x"] = out["step"].astype("float64")
        return out, []
    axis_rows = frame[frame["name"] == AXIS_METRICS[axis]]
    parts, missing = [], []
    for run, rows in out.groupby("run", sort=False):
        known = axis_rows[axis_rows["run"] == run].dropna(subset=["value"]).sort_values("step")
        if known.empty:
            missing.append(str(run))
            continue
        rows = rows.copy()
        rows["x"] = np.interp(rows["step"], known["step"], known["value"])
        parts.append(rows)
    columns = [*frame.columns, "x"]
    return (pd.concat(parts) if parts else pd.DataFrame(columns=columns)), missing


def plotted(frame: pd.DataFrame, axis: str, weight: float) -> tuple[pd.DataFrame, list[str]]:
    """What a chart draws: `with_x` on the raw series, then the values smoothed. In that
    order, so the axis is not: an EMA of a cumulative count or a clock lags behind it."""
    out, missing = with_x(frame, axis)
    return smooth(out, weight), missing


# --- across seeds --------------------------------------------------------------------------

_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
         2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
         2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]  # fmt: skip


def t_critical(df: int) -> float:
    """The 97.5% quantile of Student's t with `df` degrees of freedom (two-sided 95%)."""
    return _T975[df - 1] if df <= len(_T975) else 1.96


def aggregate(frame: pd.DataFrame, groups: Mapping[str, str], bins: int = 200) -> pd.DataFrame:
    """Mean and 95% t-interval across the runs of each group, per metric, on a shared x grid.

    Runs are downsampled at different steps, so each run is first averaged within `bins`
    equal-width x bins; a bin's interval uses the runs that have a point in it. Returns rows
    (group, name, x, mean, lo, hi, n); with one run, lo = hi = mean.
    """
    columns = ["group", "name", "x", "mean", "lo", "hi", "n"]
    data = frame.dropna(subset=["value"])
    if data.empty:
        return pd.DataFrame(columns=columns)
    lo, hi = float(data["x"].min()), float(data["x"].max())
    width = (hi - lo) / bins if hi > lo else 1.0
    data = data.assign(
        group=data["run"].map(dict(groups)),
        bin=np.minimum(((data["x"] - lo) / width).astype(int), bins - 1),
    )
    per_run = data.groupby(["group", "name", "bin", "run"], as_index=False)["value"].mean()
    stats = per_run.groupby(["group", "name", "bin"], as_index=False)["value"].agg(
        ["mean", "std", "count"]
    )
    n = stats["count"].to_numpy()
    t = np.array([t_critical(int(k) - 1) if k > 1 else 0.0 for k in n])
    half = np.where(n > 1, t * stats["std"].fillna(0).to_numpy() / np.sqrt(n), 0.0)
    return pd.DataFrame(
        {
            "group": stats["group"],
            "name": stats["name"],
            "x": lo + (stats["bin"] + 0.5) * width,
            "mean": stats["mean"],
            "lo": stats["mean"] - half,
            "hi": stats["mean"] + half,
            "n": n.astype(int),
        }
    )[columns]


def bootstrap_interval(
    values: Sequence[float], level: float = 0.95, samples: int = 4000, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, low, high): the percentile bootstrap interval of the mean, seeded so a table
    does not change between reruns. One value has no spread: low = high = mean."""
    data = np.asarray(values, dtype=np.float64)
    mean = float(data.mean())
    if data.size == 1:
        return mean, mean, mean
    picks = np.random.default_rng(seed).integers(0, data.size, size=(samples, data.size))
    means = data[picks].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return mean, float(low), float(high)


def final_table(runs: Iterable[Mapping[str, Any]], metric: str, baseline: str) -> pd.DataFrame:
    """Per group: the final value of `metric` over seeds (mean, 95% bootstrap CI, n) and the
    paired difference against `baseline` over the seeds both groups finished.

    `runs`: dicts with `group`, `seed` and `final_metrics` (finished runs only)."""
    by_group: dict[str, dict[int, float]] = {}
    for run in runs:
        value = (run.get("final_metrics") or {}).get(metric)
        if value is not None and math.isfinite(value):
            by_group.setdefault(str(run["group"]), {})[int(run["seed"])] = float(value)
    base = by_group.get(baseline, {})
    rows = []
    for group, by_seed in by_group.items():
        mean, low, high = bootstrap_interval(list(by_seed.values()))
        row = {"group": group, "n": len(by_seed), "mean": mean, "ci_low": low, "ci_high": high}
        shared = sorted(by_seed.keys() & base.keys())
        if group != baseline and shared:
            d, d_low, d_high = bootstrap_interval([by_seed[s] - base[s] for s in shared])
            row |= {"diff": d, "diff_low": d_low, "diff_high": d_high}
        rows.append(row)
    columns = ["group", "n", "mean", "ci_low", "ci_high", "diff", "diff_low", "diff_high"]
    return pd.DataFrame(rows, columns=columns)


def frontier_line(line: Mapping[str, Any]) -> pd.DataFrame:
    """A frontier answer's `line` as rows (variant, x = KL, mean, lo, hi): only the KL values
    every run of the variant reached, so no point of a line averages fewer seeds than another
    (a mean over the seeds that got furthest would flatter the variant)."""
    rows = [
        {
            "variant": v["variant"],
            "x": p["kl"],
            "mean": p["reward"]["mean"],
            "lo": p["reward"]["ci_low"],
            "hi": p["reward"]["ci_high"],
        }
        for v in line["variants"]
        for p in v["at_kl"]
        if p["reward"] is not None and p["reached"] == v["runs"]
    ]
    return pd.DataFrame(rows, columns=["variant", "x", "mean", "lo", "hi"])


def frontier_table(table: Mapping[str, Any]) -> pd.DataFrame:
    """A frontier answer's `table` as one row per (KL, variant): reward mean and 95% CI over
    the seeds that reached it, how many did of how many, and the paired difference."""
    rows = []
    for v in table["variants"]:
        for p in v["at_kl"]:
            reward, diff = p["reward"] or {}, p["diff"] or {}
            rows.append(
                {
                    "KL": p["kl"],
                    "variant": v["variant"],
                    "reached": f"{p['reached']}/{v['runs']}",
                    "mean": reward.get("mean"),
                    "ci_low": reward.get("ci_low"),
                    "ci_high": reward.get("ci_high"),
                    "diff": diff.get("mean"),
                    "diff_low": diff.get("ci_low"),
                    "diff_high": diff.get("ci_high"),
                }
            )
    columns = ["KL", "variant", "reached", "mean", "ci_low", "ci_high", "diff", "diff_low"]
    return pd.DataFrame(rows, columns=[*columns, "diff_high"]).sort_values(
        ["KL"], kind="stable", ignore_index=True
    )


# --- samples -------------------------------------------------------------------------------


def step_histograms(samples: pd.DataFrame, column: str, bins: int = 24) -> pd.DataFrame:
    """Per step, the share of the step's samples in each of `bins` equal-width value bins
    (one range for all steps, so colours compare across steps): rows (step, lo, hi, share,
    count). Steps with no finite value are left out."""
    columns = ["step", "lo", "hi", "share", "count"]
    data = samples[["step", column]].dropna()
    data = data[np.isfinite(data[column])]
    if data.empty:
        return pd.DataFrame(columns=columns)
    low, high = float(data[column].min()), float(data[column].max())
    if high <= low:  # one value everywhere: a single bin around it
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, bins + 1)
    rows = []
    for step, values in data.groupby("step")[column]:
        counts, _ = np.histogram(values.to_numpy(), bins=edges)
        for i in np.flatnonzero(counts):
            count = int(counts[i])
            rows.append((int(step), edges[i], edges[i + 1], count / len(values), count))
    return pd.DataFrame(rows, columns=columns)


def evenly_spaced(steps: Sequence[int], most: int) -> list[int]:
    """At most `most` of `steps`, spread over the whole range, always with the last one."""
    if len(steps) <= most:
        return list(steps)
    picks = np.linspace(0, len(steps) - 1, most).round().astype(int)
    return [steps[i] for i in sorted(set(picks))]


def side_by_side(samples: Mapping[str, Sequence[Mapping[str, Any]]]) -> pd.DataFrame:
    """Completions of the prompts every run sampled, one row per (prompt, run, sample):
    columns prompt, run, completion, reward, advantage."""
    prompt_sets = [{s["prompt"] for s in rows} for rows in samples.values()]
    shared = set.intersection(*prompt_sets) if prompt_sets else set()
    rows = [
        {
            "prompt": s["prompt"],
            "run": run,
            "completion": s["completion"],
            "reward": s.get("reward"),
            "advantage": s.get("advantage"),
        }
        for run, run_samples in samples.items()
        for s in run_samples
        if s["prompt"] in shared
    ]
    columns = ["prompt", "run", "completion", "reward", "advantage"]
    return pd.DataFrame(rows, columns=columns)


# --- specs ---------------------------------------------------------------------------------


def flatten(document: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys (`train.lr`); lists stay whole values."""
    out: dict[str, Any] = {}
    for key, value in document.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out |= flatten(value, path + ".")
        else:
            out[path] = value
    return out


def spec_diff(
    specs: Mapping[str, Mapping[str, Any]], ignore: Sequence[str] = ("name",)
) -> pd.DataFrame:
    """The keys whose values differ between `specs` (label -> spec): one row per key, one
    column per label; a key one spec lacks shows as "—"."""
    flat = {label: flatten(spec) for label, spec in specs.items()}
    keys = sorted({k for f in flat.values() for k in f} - set(ignore))
    missing = object()
    rows = {}
    for key in keys:
        values = [f.get(key, missing) for f in flat.values()]
        if any(v != values[0] for v in values[1:]):
            rows[key] = ["—" if v is missing else _show(v) for v in values]
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(flat)).rename_axis("key")


def _show(value: Any) -> str:
    return "null" if value is None else str(value)


# --- jobs ----------------------------------------------------------------------------------

JOB_COLUMNS = ["name", "method", "status", "progress", "eta", "final reward", "created", "open"]


def final_reward(final_metrics: Mapping[str, Any] | None) -> float | None:
    """The first of FINAL_REWARD_KEYS a job reported (its latest value while it runs)."""
    for key in FINAL_REWARD_KEYS:
        value = (final_metrics or {}).get(key)
        if value is not None:
            return float(value)
    return None


def format_duration(seconds: float | None) -> str:
    """42s, 3m 05s, 2h 10m; empty for unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return ""
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


def jobs_frame(jobs: Sequence[Mapping[str, Any]], detail_path: str = "job") -> pd.DataFrame:
    """The jobs table: one row per job, indexed by id; `progress` in [0, 1] (None when the
    total is unknown), `open` a link to the job's detail page."""
    rows = []
    for job in jobs:
        progress = job["progress"]
        total = progress.get("total_steps")
        eta = progress.get("eta_seconds") if job["status"] == "running" else None
        rows.append(
            {
                "id": job["id"],
                "name": job.get("name") or job["id"],
                "method": job["method"],
                "status": job["status"],
                "progress": min(1.0, progress["step"] / total) if total else None,
                "eta": format_duration(eta),
                "final reward": final_reward(job.get("final_metrics")),
                "created": pd.Timestamp(job["created_at"]),
                "open": f"{detail_path}?id={job['id']}",
            }
        )
    return pd.DataFrame(rows, columns=["id", *JOB_COLUMNS]).set_index("id")
