"""Charts as pure functions of DataFrames (frames.py shapes them): each returns the Vega-Lite
spec and the rows it draws, which pages pass to `st.vega_lite_chart(chart.frame, chart.spec)`.

Specs are written as plain dicts rather than built with Altair: a compare page draws six
charts of thousands of points, and building and validating Altair objects cost ~100 ms a
chart, more than drawing them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

HEIGHT = 200
"""Height of the plot area; axes, title and legend come on top of it."""
# Streamlit's default ("fit") squeezes axes and legend into the height; fit only the width.
FIT_WIDTH = {"type": "fit-x", "contains": "padding"}
# Ten distinct, saturated colours: the theme's default pale blues vanish in a band chart.
PALETTE = {"scheme": "tableau10"}
# Drag to zoom along x (scroll, too), double-click to reset.
ZOOM_X = {"name": "zoom", "select": {"type": "interval", "encodings": ["x"]}, "bind": "scales"}


@dataclass(frozen=True)
class Chart:
    frame: pd.DataFrame
    spec: dict[str, Any]

    @property
    def title(self) -> str:
        return self.spec.get("title", "")


def _base(title: str) -> dict[str, Any]:
    return {"title": title, "height": HEIGHT, "autosize": FIT_WIDTH}


def _x(title: str) -> dict[str, Any]:
    return {"field": "x", "type": "quantitative", "title": title, "axis": {"format": "~s"}}


def _colour(field: str) -> dict[str, Any]:
    return {
        "field": field,
        "type": "nominal",
        "title": None,
        "scale": PALETTE,
        "legend": {"orient": "bottom"},
    }


def _number(field: str, fmt: str = ".4~g", title: str | None = None) -> dict[str, Any]:
    out = {"field": field, "type": "quantitative", "format": fmt}
    return out | ({"title": title} if title else {})


def curves(frame: pd.DataFrame, x_title: str, title: str, color: str = "run") -> Chart:
    """One line per `color` value over x: columns x, value and `color`."""
    spec = _base(title) | {
        "mark": {"type": "line", "strokeWidth": 1.5, "clip": True},
        "params": [ZOOM_X],
        "encoding": {
            "x": _x(x_title),
            "y": {
                "field": "value",
                "type": "quantitative",
                "title": None,
                "scale": {"zero": False},
            },
            "color": _colour(color),
            "tooltip": [
                {"field": color, "type": "nominal"},
                _number("x", ",.4~g"),
                _number("value"),
            ],
        },
    }
    return Chart(frame[["x", "value", color]], spec)


def band(frame: pd.DataFrame, x_title: str, title: str, color: str | None = None) -> Chart:
    """A line of `mean` over a shaded band from `lo` to `hi` (a std band or a confidence
    interval), one per `color` value when given."""
    colour = {"color": _colour(color)} if color else {}
    who = [{"field": color, "type": "nominal"}] if color else []
    area = {
        "mark": {"type": "area", "opacity": 0.2, "clip": True},
        "params": [ZOOM_X],
        "encoding": {
            "x": _x(x_title),
            "y": {"field": "lo", "type": "quantitative", "title": None, "scale": {"zero": False}},
            "y2": {"field": "hi"},
            **colour,
        },
    }
    line = {
        "mark": {"type": "line", "strokeWidth": 1.5, "clip": True},
        "encoding": {
            "x": _x(x_title),
            "y": {"field": "mean", "type": "quantitative"},
            "tooltip": [*who, _number("x", ",.4~g"), _number("mean"), _number("lo"), _number("hi")],
            **colour,
        },
    }
    columns = ["x", "mean", "lo", "hi", *([color] if color else [])]
    return Chart(frame[columns], _base(title) | {"layer": [area, line]})


def heatmap(hist: pd.DataFrame, title: str, value_title: str) -> Chart:
    """Per-step histograms side by side (frames.step_histograms): x = step, y = value bin,
    colour = the share of that step's samples in the bin."""
    spec = _base(title) | {
        "mark": {"type": "rect"},
        "encoding": {
            "x": {
                "field": "step",
                "type": "ordinal",
                "title": "step",
                "axis": {"labelOverlap": True},
            },
            "y": {"field": "lo", "type": "quantitative", "bin": "binned", "title": value_title},
            "y2": {"field": "hi"},
            "color": {
                "field": "share",
                "type": "quantitative",
                "title": "share",
                "scale": {"scheme": "viridis"},
            },
            "tooltip": [
                {"field": "step", "type": "ordinal"},
                _number("lo", ".3~g", "from"),
                _number("hi", ".3~g", "to"),
                _number("share", ".1%"),
                {"field": "count", "type": "quantitative"},
            ],
        },
    }
    return Chart(hist[["step", "lo", "hi", "share", "count"]], spec)


PANEL_WIDTH = 340
"""Plot width of one panel of `panels` (facets cannot stretch to their container): two a
row fit the main column of a 1280-pixel-wide window."""


def panels(
    frame: pd.DataFrame, x_title: str, order: list[str], color: str, intervals: bool = False
) -> Chart:
    """One panel per metric (`name`, in `order`), two a row, each with its own y scale: the
    lines of `curves`, or with `intervals` the mean-over-band layers of `band`. One chart,
    not one per metric: the browser's cost grows with the number of Vega views far more
    than with their points (6 views: ~1.5 s more than one on this machine, under load)."""
    single = band(frame, x_title, "", color) if intervals else curves(frame, x_title, "", color)
    unit = {k: v for k, v in single.spec.items() if k not in ("title", "height", "autosize")}
    for part in unit.get("layer", [unit]):
        part.pop("params", None)  # scale-bound zoom is not supported inside facets
    return Chart(
        frame[["name", *single.frame.columns]],
        {
            "facet": {"field": "name", "type": "nominal", "title": None, "sort": order},
            "columns": 2,
            "spec": unit | {"height": HEIGHT, "width": PANEL_WIDTH},
            "resolve": {"scale": {"y": "independent"}, "axis": {"x": "independent"}},
            "config": {
                "header": {"labelFontSize": 14, "labelFontWeight": 600, "labelAnchor": "start"}
            },
        },
    )
