"""Compare: runs of a comparison (or any jobs) overlaid per metric, grouped by method or
variant with a 95% band across seeds; final metrics with paired differences against a
baseline; a comparison's reward at matched KL to the reference; what differs between the
specs; one prompt's completions side by side.

`?comparison=cmp-...` or `?jobs=job-a,job-b` preselects the runs.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard import charts, data, frames, ui
from dashboard.data import ApiError, UnreachableError

PREFERRED = (
    "reward/mean",
    "eval/reward",
    "eval/accuracy",
    "eval/pref_accuracy",
    "loss/value",
    "kl/ref",
    "completion/length",
    "gro/weight/mean",
    "gro/anchor_distance/mean",
    "gro/zero_var_groups",
)
AXES = {"step": "step", "samples": "samples seen", "wall": "wall time (s)"}
MISSING = {"samples": "sample counts", "wall": "wall-clock times"}
EACH = "each run"


def runs_of_comparison(conn: data.Conn) -> list[dict[str, Any]]:
    listed = data.comparisons(conn)
    if not listed:
        st.info("No comparisons yet: start one with `gro compare` or POST /v1/comparisons.")
        return []
    ids = [c["id"] for c in listed]
    wanted = st.query_params.get("comparison")
    chosen = st.selectbox(
        "Comparison",
        ids,
        index=ids.index(wanted) if wanted in ids else 0,
        format_func=lambda i: next(
            f"{c['name']} · {c['status']} · {i}" for c in listed if c["id"] == i
        ),
        key="compare-comparison",
    )
    comparison = data.comparison(conn, chosen)
    return [
        {
            "job": j,
            "label": f"{j['variant']}/seed{j['seed']}",
            "variant": j["variant"],
            "seed": j["seed"],
        }
        for j in comparison["jobs"]
    ]


def runs_of_jobs(conn: data.Conn) -> list[dict[str, Any]]:
    jobs = data.jobs(conn)
    if not jobs:
        st.info("No jobs yet: submit one on **New job**.")
        return []
    by_id = {j["id"]: j for j in jobs}
    wanted = [i for i in (st.query_params.get("jobs") or "").split(",") if i in by_id]
    chosen = st.multiselect(
        "Jobs",
        list(by_id),
        default=wanted,
        format_func=lambda i: ui.job_label(by_id[i]),
        key="compare-jobs",
    )
    names = [by_id[i].get("name") or i for i in chosen]
    return [
        {
            "job": by_id[i],
            # Names need not be unique; a run's label must be (it keys its curves).
            "label": name if names.count(name) == 1 else f"{name} ({i[-6:]})",
            "variant": by_id[i].get("variant") or by_id[i]["method"],
            "seed": by_id[i]["spec"]["train"]["seed"],
        }
        for i, name in zip(chosen, names, strict=True)
    ]


def pick_runs(conn: data.Conn) -> tuple[list[dict[str, Any]], bool]:
    """The runs to compare, and whether they come from one comparison."""
    sources = ["a comparison", "jobs I pick"]
    default = 1 if st.query_params.get("jobs") else 0
    source = st.radio("Runs from", sources, index=default, horizontal=True, key="compare-source")
    if source == sources[0]:
        return runs_of_comparison(conn), True
    return runs_of_jobs(conn), False


def controls(names: list[str], from_comparison: bool) -> dict[str, Any]:
    default = [n for n in PREFERRED if n in names][:6] or names[:6]
    metrics = st.multiselect("Metrics", names, default=default, key="compare-metrics")
    axis_col, ema_col, group_col, mode_col = st.columns(4)
    axis = axis_col.radio(
        "x-axis", list(AXES), format_func=AXES.get, horizontal=True, key="compare-axis"
    )
    weight = ema_col.slider("EMA smoothing", 0.0, 0.99, 0.6, 0.01, key="compare-ema")
    # The same options either way (a picked job's variant is its comparison's, else its
    # method), so a choice survives switching between a comparison and picked jobs.
    group_by = group_col.selectbox(
        "Group runs by",
        ["variant", "method", EACH],
        index=0 if from_comparison else 1,
        key="compare-group",
    )
    modes = ["mean ± 95% CI", "every run"]
    mode = mode_col.radio(
        "Show", modes, horizontal=True, key="compare-mode", disabled=group_by == EACH
    )
    return {
        "metrics": metrics,
        "axis": axis,
        "weight": weight,
        "group_by": group_by,
        "aggregate": group_by != EACH and mode == modes[0],
    }


def group_of(run: dict[str, Any], group_by: str) -> str:
    if group_by == "variant":
        return str(run["variant"])
    return run["job"]["method"] if group_by == "method" else run["label"]


def load(conn: data.Conn, runs: list[dict[str, Any]], names: tuple[str, ...]) -> pd.DataFrame:
    """Every run's series for `names`, fetched in parallel, in one long frame."""

    def one(run: dict[str, Any]) -> pd.DataFrame:
        job = run["job"]
        answer = data.metrics(conn, job["id"], names, data.COMPARE_POINTS, data.version(job))
        return frames.series_frame(answer, run["label"])

    parts = data.parallel(one, runs)
    return (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame(columns=frames.METRIC_COLUMNS)
    )


def draw(frame: pd.DataFrame, runs: list[dict[str, Any]], options: dict[str, Any]) -> None:
    frame, missing = frames.plotted(frame, options["axis"], options["weight"])
    if missing:
        what = MISSING[options["axis"]]
        st.info(
            f"No {what} (`{frames.AXIS_METRICS[options['axis']]}`) recorded for: "
            f"{', '.join(missing)}; those runs are left out of these charts."
        )
    groups = {r["label"]: group_of(r, options["group_by"]) for r in runs}
    x_title = AXES[options["axis"]]
    drawn = [n for n in options["metrics"] if n in set(frame["name"])]
    empty = [n for n in options["metrics"] if n not in drawn]
    if empty:
        st.caption(f"No data in these runs for: {', '.join(empty)}.")
    if not drawn:
        return
    if options["aggregate"]:
        stats = frames.aggregate(frame[frame["name"].isin(drawn)], groups)
        ui.draw(charts.panels(stats, x_title, drawn, "group", intervals=True))
    else:
        ui.draw(charts.panels(frame[frame["name"].isin(drawn)], x_title, drawn, "run"))


def final_metrics(runs: list[dict[str, Any]], group_by: str) -> None:
    st.subheader("Final metrics")
    finished = [r for r in runs if r["job"]["status"] == "succeeded"]
    keys = sorted({k for r in finished for k in r["job"]["final_metrics"]})
    if not keys:
        st.info("No run has finished yet.")
        return
    groups = list(dict.fromkeys(group_of(r, group_by) for r in finished))
    metric_col, base_col = st.columns(2)
    default = next((k for k in frames.FINAL_REWARD_KEYS if k in keys), keys[0])
    metric = metric_col.selectbox(
        "Metric", keys, index=keys.index(default), key="compare-final-metric"
    )
    baseline = base_col.selectbox("Baseline", groups, key="compare-baseline")
    table = frames.final_table(
        (
            {
                "group": group_of(r, group_by),
                "seed": r["seed"],
                "final_metrics": r["job"]["final_metrics"],
            }
            for r in finished
        ),
        metric,
        baseline,
    )
    st.dataframe(
        table,
        hide_index=True,
        key="compare-final",
        column_config={"n": st.column_config.NumberColumn("seeds")},
    )
    st.caption(
        "Mean over seeds with a 95% percentile-bootstrap interval; `diff` is the paired "
        f"(same seed) difference against {baseline}, over the seeds both finished."
    )


def matched_kl(conn: data.Conn, comparison_id: str, labels: list[str]) -> None:
    st.subheader("Reward at matched KL")
    at_col, base_col = st.columns(2)
    at_kl = at_col.text_input(
        "At KL",
        "",
        placeholder="e.g. 0.1,0.5 (default: up to where every run got)",
        key="compare-at-kl",
    )
    baseline = base_col.selectbox("Baseline", labels, key="compare-kl-baseline")
    try:
        answer = data.frontier(conn, comparison_id, at_kl.strip() or None, baseline)
    except ApiError as exc:
        st.error(f"{exc}")
        return
    line = frames.frontier_line(answer["line"])
    if line.empty:
        st.info(
            f"No finished run logged both {answer['line']['kl_metric']} and "
            f"{answer['line']['reward_metric']} (online methods evaluate KL to the reference)."
        )
        return
    ui.draw(charts.band(line, "KL to reference", "Held-out reward against KL", "variant"))
    st.dataframe(frames.frontier_table(answer["table"]), hide_index=True, key="compare-kl-table")
    st.caption(
        "Each run is read where its KL first crosses the value, interpolated linearly between "
        "the evaluations around it, never extrapolated (`reached`: runs that got that far). "
        f"Mean over those seeds with a 95% bootstrap interval; `diff` is the paired "
        f"difference against {baseline} over the seeds both reached. Lines stop where a "
        "variant's first run stops."
    )


def spec_diff(runs: list[dict[str, Any]], group_by: str) -> None:
    st.subheader("Spec differences")
    grouped = group_by != EACH
    specs: dict[str, dict[str, Any]] = {}
    for run in runs:
        specs.setdefault(group_of(run, group_by), run["job"]["spec"])
    diff = frames.spec_diff(specs, ignore=("name", "train.seed") if grouped else ("name",))
    if diff.empty:
        st.caption(
            "The specs are the same" + (" (apart from names and seeds)." if grouped else ".")
        )
    else:
        st.dataframe(diff, key="compare-spec-diff")


def side_by_side(conn: data.Conn, runs: list[dict[str, Any]], group_by: str) -> None:
    st.subheader("Same prompt, side by side")
    reps: dict[str, dict[str, Any]] = {}
    for run in sorted(runs, key=lambda r: r["seed"]):
        reps.setdefault(group_of(run, group_by), run)
    per_run = data.parallel(
        lambda r: data.sample_steps(conn, r["job"]["id"], data.version(r["job"])), reps.values()
    )
    common = sorted(set.intersection(*(set(s) for s in per_run))) if per_run else []
    if not common:
        st.info("These runs have no sampled step in common.")
        return
    step = st.selectbox("Step", common[::-1], key="compare-sample-step")
    samples = data.parallel(lambda r: data.samples(conn, r["job"]["id"], step), reps.values())
    table = frames.side_by_side(dict(zip(reps, samples, strict=True)))
    if table.empty:
        st.info(f"No prompt was sampled by every run at step {step}.")
        return
    prompt = st.selectbox("Prompt", sorted(table["prompt"].unique()), key="compare-prompt")
    columns = st.columns(len(reps))
    for column, group in zip(columns, reps, strict=True):
        rows = table[(table["prompt"] == prompt) & (table["run"] == group)]
        column.markdown(f"**{group}** · mean reward {rows['reward'].mean():.2f}")
        column.dataframe(
            rows[["completion", "reward", "advantage"]], hide_index=True, key=f"compare-sbs-{group}"
        )


def metric_names(conn: data.Conn, runs: list[dict[str, Any]], from_comparison: bool) -> list[str]:
    """What the runs logged. A comparison's runs share one spec, so the most advanced run
    speaks for all (one request, not one per run); picked jobs may differ: all are asked."""
    if from_comparison:
        ahead = max(runs, key=lambda r: r["job"]["progress"]["step"])["job"]
        return data.metric_names(conn, ahead["id"], data.version(ahead))
    versions = [(r["job"]["id"], data.version(r["job"])) for r in runs]
    answers = data.parallel(lambda v: data.metric_names(conn, *v), versions)
    return sorted({n for names in answers for n in names})


def page() -> None:
    st.title("Compare")
    conn = ui.conn()
    try:
        runs, from_comparison = pick_runs(conn)
        if not runs:
            return
        names = metric_names(conn, runs, from_comparison)
        if not names:
            st.info("No metrics yet: the runs have not logged a step.")
            return
        axes = set(frames.AXIS_METRICS.values())
        options = controls([n for n in names if n not in axes], from_comparison)
        axis_metric = frames.AXIS_METRICS.get(options["axis"])
        wanted = tuple(options["metrics"]) + ((axis_metric,) if axis_metric else ())
        draw(load(conn, runs, wanted), runs, options)
        final_metrics(runs, options["group_by"])
        spec_diff(runs, options["group_by"])
        side_by_side(conn, runs, options["group_by"])
        if from_comparison:
            comparison = runs[0]["job"]["comparison_id"]
            matched_kl(conn, comparison, list(dict.fromkeys(str(r["variant"]) for r in runs)))
    except (ApiError, UnreachableError) as exc:
        ui.show_error(exc, "could not load the comparison")


page()
