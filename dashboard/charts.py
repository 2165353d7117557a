"""Charts as pure functions of DataFrames (frames.py shapes them); each returns an Altair chart
that pages pass to `st.altair_chart` and tests inspect with `.to_dict()`."""

from __future__ import annotations

import altair as alt
import pandas as pd

HEIGHT = 200
"""Height of the plot area; axes, title and legend come on top of it."""
# Streamlit's default ("fit") squeezes axes and legend into the height; fit only the width.
FIT_WIDTH = alt.AutoSizeParams(type="fit-x", contains="padding")
# Ten distinct, saturated colours: the theme's default pale blues vanish in a band chart.
PALETTE = alt.Scale(scheme="tableau10")
# Streamlit ships chart data as Arrow, not inline JSON, so Altair's 5000-row guard (meant
# for notebooks embedding data in the page) would only refuse long runs for no reason.
alt.data_transformers.disable_max_rows()


def _x(title: str) -> alt.X:
    return alt.X("x:Q", title=title, axis=alt.Axis(format="~s"))


def curves(frame: pd.DataFrame, x_title: str, title: str, color: str = "run") -> alt.Chart:
    """One line per `color` value: columns x, value, and `color`. Drag to zoom, double-click
    to reset."""
    return (
        alt.Chart(frame[["x", "value", color]], title=title, height=HEIGHT)
        .mark_line(strokeWidth=1.5, clip=True)
        .encode(
            x=_x(x_title),
            y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)),
            color=alt.Color(
                f"{color}:N", title=None, scale=PALETTE, legend=alt.Legend(orient="bottom")
            ),
            tooltip=[
                color,
                alt.Tooltip("x:Q", format=",.4~g"),
                alt.Tooltip("value:Q", format=".4~g"),
            ],
        )
        .properties(autosize=FIT_WIDTH)
        .interactive(bind_y=False)
    )


def band(frame: pd.DataFrame, x_title: str, title: str, color: str | None = None) -> alt.Chart:
    """A line of `mean` over a shaded band from `lo` to `hi` (a std band or a confidence
    interval), one per `color` value when given."""
    columns = ["x", "mean", "lo", "hi", *([color] if color else [])]
    base = alt.Chart(frame[columns], height=HEIGHT)
    colour = (
        {
            "color": alt.Color(
                f"{color}:N", title=None, scale=PALETTE, legend=alt.Legend(orient="bottom")
            )
        }
        if color
        else {}
    )
    area = base.mark_area(opacity=0.2, clip=True).encode(
        x=_x(x_title), y=alt.Y("lo:Q", title=None, scale=alt.Scale(zero=False)), y2="hi:Q", **colour
    )
    line = base.mark_line(strokeWidth=1.5, clip=True).encode(
        x=_x(x_title),
        y="mean:Q",
        tooltip=[
            *([color] if color else []),
            alt.Tooltip("x:Q", format=",.4~g"),
            alt.Tooltip("mean:Q", format=".4~g"),
            alt.Tooltip("lo:Q", format=".4~g"),
            alt.Tooltip("hi:Q", format=".4~g"),
        ],
        **colour,
    )
    return (area + line).properties(title=title, autosize=FIT_WIDTH).interactive(bind_y=False)


def heatmap(hist: pd.DataFrame, title: str, value_title: str) -> alt.Chart:
    """Per-step histograms side by side (frames.step_histograms): x = step, y = value bin,
    colour = the share of that step's samples in the bin."""
    return (
        alt.Chart(hist, title=title, height=HEIGHT)
        .properties(autosize=FIT_WIDTH)
        .mark_rect()
        .encode(
            x=alt.X("step:O", title="step", axis=alt.Axis(labelOverlap=True)),
            y=alt.Y("lo:Q", bin="binned", title=value_title),
            y2="hi:Q",
            color=alt.Color(
                "share:Q", title="share", scale=alt.Scale(scheme="viridis"), legend=alt.Legend()
            ),
            tooltip=[
                "step:O",
                alt.Tooltip("lo:Q", format=".3~g", title="from"),
                alt.Tooltip("hi:Q", format=".3~g", title="to"),
                alt.Tooltip("share:Q", format=".1%"),
                "count:Q",
            ],
        )
    )
