"""dashboard.frames: the shaping behind every chart and table, checked against hand-worked
numbers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from dashboard import frames


def long(run: str, name: str, steps: list[int], values: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"run": run, "name": name, "step": steps, "value": values})


def test_series_frame_is_long_and_turns_nulls_into_nan():
    answer = {
        "names": ["a", "b", "c"],
        "series": {
            "a": {"steps": [1, 2], "values": [0.5, None], "total_points": 2},
            "b": {"steps": [3], "values": [1.0], "total_points": 1},
            "c": {"steps": [], "values": [], "total_points": 0},
        },
    }
    frame = frames.series_frame(answer, "r1")
    assert list(frame.columns) == frames.METRIC_COLUMNS
    assert frame[["name", "step"]].values.tolist() == [["a", 1], ["a", 2], ["b", 3]]
    assert (frame["run"] == "r1").all() and math.isnan(frame["value"][1])
    assert frames.series_frame({"series": {}}, "r").empty


def test_ema_is_debiased_and_skips_nan():
    weight = 0.5
    got = frames.ema([1.0, float("nan"), 3.0, 5.0], weight)
    # By hand: acc = 0.5, 0.5*0.5 + 0.5*3 = 1.75, 0.875 + 2.5 = 3.375; norms 0.5, 0.75, 0.875.
    assert got[0] == pytest.approx(1.0)
    assert math.isnan(got[1])
    assert got[2] == pytest.approx(1.75 / 0.75)
    assert got[3] == pytest.approx(3.375 / 0.875)
    assert frames.ema([1.0, 2.0], 0.0).tolist() == [1.0, 2.0]


def test_smooth_keeps_runs_and_names_apart():
    frame = pd.concat([long("a", "m", [2, 1], [10.0, 0.0]), long("b", "m", [1, 2], [100.0, 100.0])])
    out = frames.smooth(frame, 0.9)
    a = out[out["run"] == "a"].sort_values("step")["value"].tolist()
    assert a[0] == pytest.approx(0.0) and a[1] == pytest.approx(0.1 * 10 / (1 - 0.81))
    assert out[out["run"] == "b"]["value"].tolist() == pytest.approx([100.0, 100.0])


def test_with_x_samples_and_wall_time():
    frame = pd.concat(
        [
            long("a", "m", [1, 5, 10], [1.0, 2.0, 3.0]),
            long("a", frames.ELAPSED, [1, 10], [2.0, 20.0]),
            long("a", frames.SAMPLES, [1, 5, 10], [32.0, 160.0, 320.0]),
            long("b", "m", [1, 2], [0.0, 0.0]),
            long("b", frames.SAMPLES, [1, 2], [8.0, 16.0]),
        ]
    )
    by_step, dropped = frames.with_x(frame, "step")
    assert dropped == [] and set(by_step["name"]) == {"m"}  # the axes are not drawn
    samples, dropped = frames.with_x(frame, "samples")
    assert dropped == [] and set(samples["name"]) == {"m"}
    assert samples[samples["run"] == "a"]["x"].tolist() == [32, 160, 320]
    assert samples[samples["run"] == "b"]["x"].tolist() == [8, 16]
    wall, dropped = frames.with_x(frame, "wall")
    assert dropped == ["b"] and set(wall["run"]) == {"a"}
    # Step 5 lies 4/9 of the way from step 1 (2 s) to step 10 (20 s).
    assert wall["x"].tolist() == pytest.approx([2.0, 2.0 + 18 * 4 / 9, 20.0])
    none, dropped = frames.with_x(frame[frame["name"] != frames.ELAPSED], "wall")
    assert none.empty and dropped == ["a", "b"] and "x" in none.columns


def test_samples_axis_reads_the_trainers_count_between_its_points():
    # Downsampled series keep different steps: the count at step 3 lies between its
    # recorded points, and a run whose batches changed size is not a straight line.
    frame = pd.concat(
        [
            long("r", "reward/mean", [1, 3, 4, 6], [0.1, 0.2, 0.3, 0.4]),
            long("r", frames.SAMPLES, [1, 2, 4, 6], [8.0, 16.0, 48.0, 112.0]),
        ]
    )
    out, dropped = frames.with_x(frame, "samples")
    assert dropped == [] and out["x"].tolist() == [8.0, 32.0, 48.0, 112.0]


def test_samples_axis_leaves_out_runs_without_the_count():
    frame = pd.concat(
        [
            long("counted", "m", [1, 2], [1.0, 2.0]),
            long("counted", frames.SAMPLES, [1, 2], [4.0, 8.0]),
            long("old", "m", [1, 2], [1.0, 2.0]),
            long("old", frames.SAMPLES, [1, 2], [float("nan")] * 2),  # JSON nulls only
        ]
    )
    out, dropped = frames.with_x(frame, "samples")
    assert dropped == ["old"] and set(out["run"]) == {"counted"}
    assert out["x"].tolist() == [4.0, 8.0]


def test_plotted_smooths_the_values_not_the_axis():
    frame = pd.concat(
        [
            long("r", "m", [1, 2, 3], [0.0, 10.0, 10.0]),
            long("r", frames.SAMPLES, [1, 2, 3], [32.0, 64.0, 96.0]),
            long("r", frames.ELAPSED, [1, 2, 3], [1.0, 2.0, 3.0]),
        ]
    )
    for axis, x in (("samples", [32.0, 64.0, 96.0]), ("wall", [1.0, 2.0, 3.0])):
        out, _ = frames.plotted(frame, axis, 0.9)
        assert out["x"].tolist() == x  # an EMA of a count would lag behind it
        assert out["value"].tolist() == pytest.approx(frames.ema([0.0, 10.0, 10.0], 0.9))


def test_aggregate_mean_and_t_interval_across_runs():
    frame = pd.concat(
        [
            long("s0", "m", [0, 10], [1.0, 4.0]),
            long("s1", "m", [0, 10], [2.0, 6.0]),
            long("s2", "m", [0, 10], [3.0, 8.0]),
            long("other", "m", [0, 10], [5.0, 5.0]),
        ]
    ).assign(x=lambda f: f["step"].astype(float))
    groups = {"s0": "g", "s1": "g", "s2": "g", "other": "h"}
    out = frames.aggregate(frame, groups, bins=2).sort_values(["group", "x"])
    g = out[out["group"] == "g"]
    assert g["mean"].tolist() == pytest.approx([2.0, 6.0])
    assert g["n"].tolist() == [3, 3]
    # Values 1, 2, 3: sd 1, half-width t(0.975, 2) · 1/√3; values 4, 6, 8: sd 2.
    half = 4.303 / math.sqrt(3)
    assert g["lo"].tolist() == pytest.approx([2 - half, 6 - 2 * half])
    assert g["hi"].tolist() == pytest.approx([2 + half, 6 + 2 * half])
    h = out[out["group"] == "h"]
    assert (h["lo"] == h["mean"]).all() and (h["hi"] == h["mean"]).all()
    assert g["x"].tolist() == pytest.approx([2.5, 7.5])


def test_aggregate_averages_a_runs_points_within_a_bin_first():
    # Run a has three points in the one bin, run b one: the group mean weighs runs equally.
    frame = pd.concat(
        [long("a", "m", [0, 1, 2], [0.0, 0.0, 0.0]), long("b", "m", [2], [10.0])]
    ).assign(x=lambda f: f["step"].astype(float))
    out = frames.aggregate(frame, {"a": "g", "b": "g"}, bins=1)
    assert out["mean"].tolist() == [5.0] and out["n"].tolist() == [2]


def test_t_critical_values():
    assert frames.t_critical(1) == pytest.approx(12.706)
    assert frames.t_critical(9) == pytest.approx(2.262)
    assert frames.t_critical(500) == pytest.approx(1.96)


def test_bootstrap_interval_brackets_the_mean_and_is_reproducible():
    values = [0.1, 0.4, 0.35, 0.8, 0.5]
    mean, low, high = frames.bootstrap_interval(values)
    assert mean == pytest.approx(np.mean(values)) and low < mean < high
    assert min(values) <= low and high <= max(values)
    assert frames.bootstrap_interval(values) == (mean, low, high)
    assert frames.bootstrap_interval([0.3]) == (0.3, 0.3, 0.3)


def test_final_table_pairs_seeds_against_the_baseline():
    runs = [
        {"group": "base", "seed": 0, "final_metrics": {"r": 0.5}},
        {"group": "base", "seed": 1, "final_metrics": {"r": 0.7}},
        {"group": "base", "seed": 2, "final_metrics": {"r": 0.6}},
        {"group": "new", "seed": 0, "final_metrics": {"r": 0.6}},
        {"group": "new", "seed": 1, "final_metrics": {"r": 0.9}},
        {"group": "new", "seed": 3, "final_metrics": {"r": 0.1}},  # no baseline seed 3
        {"group": "none", "seed": 0, "final_metrics": {"other": 1.0}},
    ]
    table = frames.final_table(runs, "r", "base").set_index("group")
    assert list(table.index) == ["base", "new"]
    assert table.loc["base", "mean"] == pytest.approx(0.6) and table.loc["base", "n"] == 3
    assert math.isnan(table.loc["base", "diff"])
    assert table.loc["new", "mean"] == pytest.approx((0.6 + 0.9 + 0.1) / 3)
    # Paired over seeds 0 and 1 only: differences 0.1 and 0.2.
    assert table.loc["new", "diff"] == pytest.approx(0.15)
    assert 0.1 - 1e-9 <= table.loc["new", "diff_low"] <= table.loc["new", "diff_high"] <= 0.2 + 1e-9


def test_step_histograms_share_one_binning_and_sum_to_one():
    samples = pd.DataFrame(
        {
            "step": [1, 1, 1, 1, 2, 2, 3],
            "advantage": [-1.0, -1.0, 1.0, 0.0, 1.0, None, float("inf")],
        }
    )
    hist = frames.step_histograms(samples, "advantage", bins=4)
    assert sorted(hist["step"].unique()) == [1, 2]  # step 3 has no finite value
    assert hist.groupby("step")["share"].sum().tolist() == pytest.approx([1.0, 1.0])
    one = hist[hist["step"] == 1].sort_values("lo")
    assert one["count"].tolist() == [2, 1, 1] and one["lo"].tolist() == [-1.0, 0.0, 0.5]
    assert hist["hi"].max() == 1.0 and hist["lo"].min() == -1.0
    flat = frames.step_histograms(pd.DataFrame({"step": [1, 1], "w": [0.5, 0.5]}), "w", bins=4)
    assert flat["count"].tolist() == [2] and flat["lo"].iloc[0] <= 0.5 < flat["hi"].iloc[0]
    assert frames.step_histograms(samples.iloc[6:], "advantage").empty


def test_evenly_spaced_keeps_both_ends():
    steps = list(range(10, 1001, 10))
    picked = frames.evenly_spaced(steps, 5)
    assert picked[0] == 10 and picked[-1] == 1000 and len(picked) == 5
    assert frames.evenly_spaced([1, 2], 5) == [1, 2]


def test_side_by_side_keeps_prompts_every_run_sampled():
    samples = {
        "a": [
            {"prompt": "p", "completion": "x", "reward": 1.0},
            {"prompt": "q", "completion": "y"},
        ],
        "b": [{"prompt": "p", "completion": "z", "reward": 0.0, "advantage": -1.0}],
    }
    table = frames.side_by_side(samples)
    assert table[["prompt", "run", "completion"]].values.tolist() == [
        ["p", "a", "x"],
        ["p", "b", "z"],
    ]
    assert frames.side_by_side({}).empty


def test_spec_diff_shows_only_differing_keys():
    a = {"name": "x", "method": "dpo", "train": {"lr": 1e-5, "seed": 0}, "lora": None}
    b = {"name": "y", "method": "kto", "train": {"lr": 1e-5, "seed": 1}, "lora": {"r": 8}}
    diff = frames.spec_diff({"A": a, "B": b}, ignore=("name", "train.seed"))
    assert diff.to_dict(orient="index") == {
        "lora": {"A": "null", "B": "—"},
        "lora.r": {"A": "—", "B": "8"},
        "method": {"A": "dpo", "B": "kto"},
    }
    assert frames.spec_diff({"A": a, "B": dict(a)}).empty
    assert frames.flatten({"a": {"b": {"c": 1}}, "d": [1, 2], "e": {}}) == {
        "a.b.c": 1,
        "d": [1, 2],
        "e": {},
    }


def test_jobs_frame_progress_eta_and_links():
    job = {
        "id": "job-1",
        "name": "run",
        "method": "grpo",
        "status": "running",
        "created_at": "2026-01-02T03:04:05Z",
        "progress": {"step": 30, "total_steps": 120, "eta_seconds": 125.0},
        "final_metrics": {"reward/mean": 0.4, "eval/accuracy": 0.7},
    }
    done = {**job, "id": "job-2", "name": None, "status": "succeeded"}
    unknown = {
        **job,
        "id": "job-3",
        "progress": {"step": 3, "total_steps": None},
        "final_metrics": {},
    }
    table = frames.jobs_frame([job, done, unknown])
    assert table.loc["job-1", "progress"] == 0.25 and table.loc["job-1", "eta"] == "2m 05s"
    assert table.loc["job-1", "final reward"] == 0.7  # eval/accuracy outranks reward/mean
    assert table.loc["job-2", "name"] == "job-2" and table.loc["job-2", "eta"] == ""
    assert pd.isna(table.loc["job-3", "progress"]) and pd.isna(table.loc["job-3", "final reward"])
    assert table.loc["job-1", "open"] == "job?id=job-1"
    assert list(table.columns) == frames.JOB_COLUMNS


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, ""), (-1, ""), (float("nan"), ""), (42.4, "42s"), (185, "3m 05s"), (7800, "2h 10m")],
)
def test_format_duration(seconds, text):
    assert frames.format_duration(seconds) == text
