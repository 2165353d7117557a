"""dashboard.charts: the Vega-Lite spec each chart function writes and the rows it draws."""

from __future__ import annotations

import pandas as pd

from dashboard import charts, frames


def test_curves_draws_one_line_per_run_over_x():
    frame = pd.DataFrame(
        {
            "run": ["a"] * 3 + ["b"] * 3,
            "name": "m",
            "x": [1, 2, 3] * 2,
            "value": [0.1, 0.2, 0.3, 1, 2, 3],
        }
    )
    chart = charts.curves(frame, "samples seen", "reward/mean")
    spec = chart.spec
    assert spec["mark"]["type"] == "line" and chart.title == "reward/mean"
    assert (spec["encoding"]["x"]["field"], spec["encoding"]["x"]["title"]) == ("x", "samples seen")
    assert spec["encoding"]["y"]["field"] == "value"
    assert spec["encoding"]["color"]["field"] == "run"
    assert list(chart.frame.columns) == ["x", "value", "run"] and len(chart.frame) == 6
    assert spec["params"][0]["bind"] == "scales"  # zoom along x


def test_curves_colours_by_metric_name_when_asked():
    frame = pd.DataFrame({"name": ["p", "q"], "x": [1, 1], "value": [0.0, 1.0], "run": "r"})
    chart = charts.curves(frame, "step", "Loss", color="name")
    assert chart.spec["encoding"]["color"]["field"] == "name"
    assert sorted(chart.frame["name"]) == ["p", "q"]


def test_band_layers_an_interval_under_the_mean():
    stats = pd.DataFrame(
        {"x": [1.0, 2.0], "mean": [0.5, 0.6], "lo": [0.4, 0.5], "hi": [0.6, 0.7], "group": "g"}
    )
    chart = charts.band(stats, "step", "reward/mean", color="group")
    area, line = chart.spec["layer"]
    assert chart.title == "reward/mean"
    assert area["mark"]["type"] == "area"
    assert area["encoding"]["y"]["field"] == "lo" and area["encoding"]["y2"]["field"] == "hi"
    assert line["mark"]["type"] == "line" and line["encoding"]["y"]["field"] == "mean"
    assert line["encoding"]["color"]["field"] == "group"
    assert chart.frame["hi"].tolist() == [0.6, 0.7]
    plain = charts.band(stats, "step", "t")
    assert "color" not in plain.spec["layer"][1]["encoding"]
    assert "group" not in plain.frame.columns


def test_heatmap_colours_each_step_bin_by_its_share():
    samples = pd.DataFrame({"step": [1, 1, 2, 2], "advantage": [-1.0, 1.0, 1.0, 1.0]})
    hist = frames.step_histograms(samples, "advantage", bins=2)
    chart = charts.heatmap(hist, "Advantage distribution", "advantage")
    assert chart.spec["mark"]["type"] == "rect" and chart.title == "Advantage distribution"
    enc = chart.spec["encoding"]
    assert enc["x"]["field"] == "step" and enc["x"]["type"] == "ordinal"
    assert enc["y"]["field"] == "lo" and enc["y2"]["field"] == "hi"
    assert enc["color"]["field"] == "share"
    shares = {(r.step, r.lo): r.share for r in chart.frame.itertuples()}
    assert shares == {(1, -1.0): 0.5, (1, 0.0): 0.5, (2, 0.0): 1.0}


def test_every_chart_keeps_its_axes_out_of_the_plot_height():
    frame = pd.DataFrame({"run": "a", "x": [1.0], "value": [0.0]})
    for chart in (
        charts.curves(frame, "step", "t"),
        charts.band(frame.assign(mean=0.0, lo=0.0, hi=0.0), "step", "t"),
    ):
        assert chart.spec["autosize"] == {"type": "fit-x", "contains": "padding"}
        assert chart.spec["height"] == charts.HEIGHT


def test_panels_facet_one_chart_by_metric_in_order():
    frame = pd.DataFrame(
        {"name": ["b", "a", "b"], "run": "r", "x": [1.0, 1.0, 2.0], "value": [0.0, 1.0, 2.0]}
    )
    chart = charts.panels(frame, "step", ["b", "a"], "run")
    spec = chart.spec
    assert spec["facet"] == {"field": "name", "type": "nominal", "title": None, "sort": ["b", "a"]}
    assert spec["columns"] == 2 and spec["resolve"]["scale"]["y"] == "independent"
    assert spec["spec"]["mark"]["type"] == "line" and "params" not in spec["spec"]
    assert list(chart.frame.columns) == ["name", "x", "value", "run"]
    stats = pd.DataFrame(
        {"name": "a", "group": "g", "x": [1.0], "mean": [0.5], "lo": [0.4], "hi": [0.6]}
    )
    bands = charts.panels(stats, "step", ["a"], "group", intervals=True)
    assert [layer["mark"]["type"] for layer in bands.spec["spec"]["layer"]] == ["area", "line"]
    assert all("params" not in layer for layer in bands.spec["spec"]["layer"])
