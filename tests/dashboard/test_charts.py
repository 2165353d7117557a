"""dashboard.charts: the Vega-Lite each chart function produces, read back from `to_dict()`."""

from __future__ import annotations

import pandas as pd

from dashboard import charts, frames


def dataset(spec: dict, layer: dict | None = None) -> list[dict]:
    """The rows a (layer of a) chart draws."""
    name = (layer or spec).get("data", spec.get("data"))["name"]
    return spec["datasets"][name]


def test_curves_draws_one_line_per_run_over_x():
    frame = pd.DataFrame(
        {"run": ["a"] * 3 + ["b"] * 3, "x": [1, 2, 3] * 2, "value": [0.1, 0.2, 0.3, 1, 2, 3]}
    )
    spec = charts.curves(frame, "samples seen", "reward/mean").to_dict()
    assert spec["mark"]["type"] == "line" and spec["title"] == "reward/mean"
    assert (
        spec["encoding"]["x"]["field"] == "x" and spec["encoding"]["x"]["title"] == "samples seen"
    )
    assert spec["encoding"]["y"]["field"] == "value"
    assert spec["encoding"]["color"]["field"] == "run"
    assert len(dataset(spec)) == 6


def test_curves_colours_by_metric_name_when_asked():
    frame = pd.DataFrame({"name": ["p", "q"], "x": [1, 1], "value": [0.0, 1.0], "run": "r"})
    spec = charts.curves(frame, "step", "Loss", color="name").to_dict()
    assert spec["encoding"]["color"]["field"] == "name"


def test_band_layers_an_interval_under_the_mean():
    stats = pd.DataFrame(
        {"x": [1.0, 2.0], "mean": [0.5, 0.6], "lo": [0.4, 0.5], "hi": [0.6, 0.7], "group": "g"}
    )
    spec = charts.band(stats, "step", "reward/mean", color="group").to_dict()
    area, line = spec["layer"]
    assert spec["title"] == "reward/mean"
    assert area["mark"]["type"] == "area"
    assert area["encoding"]["y"]["field"] == "lo" and area["encoding"]["y2"]["field"] == "hi"
    assert line["mark"]["type"] == "line" and line["encoding"]["y"]["field"] == "mean"
    assert line["encoding"]["color"]["field"] == "group"
    assert [r["hi"] for r in dataset(spec, area)] == [0.6, 0.7]
    plain = charts.band(stats, "step", "t").to_dict()
    assert "color" not in plain["layer"][1]["encoding"]


def test_heatmap_colours_each_step_bin_by_its_share():
    samples = pd.DataFrame({"step": [1, 1, 2, 2], "advantage": [-1.0, 1.0, 1.0, 1.0]})
    hist = frames.step_histograms(samples, "advantage", bins=2)
    spec = charts.heatmap(hist, "Advantage distribution", "advantage").to_dict()
    assert spec["mark"]["type"] == "rect" and spec["title"] == "Advantage distribution"
    enc = spec["encoding"]
    assert enc["x"]["field"] == "step" and enc["x"]["type"] == "ordinal"
    assert enc["y"]["field"] == "lo" and enc["y2"]["field"] == "hi"
    assert enc["color"]["field"] == "share"
    shares = {(r["step"], r["lo"]): r["share"] for r in dataset(spec)}
    assert shares == {(1, -1.0): 0.5, (1, 0.0): 0.5, (2, 0.0): 1.0}


def test_long_runs_are_not_refused():
    # Altair refuses > 5000 inline rows by default; a 10k-step run must still chart.
    frame = pd.DataFrame({"run": "a", "x": range(20_000), "value": 0.0})
    assert len(dataset(charts.curves(frame, "step", "t").to_dict())) == 20_000
