"""Job detail: progress and actions, training curves, the GRO quantities (advantage, anchor
distance, weight) as distributions over steps, samples, events, checkpoints and the spec.

`?id=job-...` selects the job. While it is active, the body reloads in a fragment.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st
import yaml

from dashboard import charts, data, frames, ui
from dashboard.data import ApiError, UnreachableError

# Sample steps fetched for the distribution heatmaps (evenly spread over the run). Page
# scripts take comments, not attribute docstrings: Streamlit would print those.
HEATMAP_STEPS = 40

# (title, metric names drawn as overlaid lines); charts with none of their names are skipped.
CURVES = [
    ("Eval", ("eval/reward", "eval/accuracy", "eval/pref_accuracy", "eval/loss")),
    # The method's own loss (what TRL or its paper reports), and its KL and NLL terms; the
    # surrogate gro differentiates (loss/policy) is not a loss anyone compares.
    ("Loss", ("loss/value", "loss/kl", "loss/nll", "loss/sft", "loss/reward_model")),
    ("KL to reference", ("kl/ref",)),
    ("Completion length", ("completion/length", "eval/length")),
]
GRO_CURVES = [
    ("Zero-variance groups (share)", ("gro/zero_var_groups",)),
    ("Clip fraction", ("gro/clip_frac",)),
]
BANDS = [  # (title, mean, std)
    ("Reward (mean ± std)", "reward/mean", "reward/std"),
    ("Anchor distance (mean ± std)", "gro/anchor_distance/mean", "gro/anchor_distance/std"),
    ("Weight (mean ± std)", "gro/weight/mean", "gro/weight/std"),
]
DISTRIBUTIONS = [
    ("advantage", "Advantage distribution"),
    ("anchor_distance", "Anchor-distance distribution"),
    ("weight", "Weight distribution"),
]


def header(job: dict[str, Any]) -> None:
    st.title(job.get("name") or job["id"])
    progress = job["progress"]
    total = progress.get("total_steps")
    info, buttons = st.columns([3, 1])
    with info:
        st.markdown(
            f"{ui.status_label(job['status'])} · **{job['method']}** · `{job['id']}`"
            + (f" · comparison `{job['comparison_id']}`" if job.get("comparison_id") else "")
        )
        eta = (
            frames.format_duration(progress.get("eta_seconds"))
            if job["status"] == "running"
            else ""
        )
        text = (
            f"step {progress['step']}"
            + (f" / {total}" if total else "")
            + (f" · ETA {eta}" if eta else "")
        )
        st.progress(min(1.0, progress["step"] / total) if total else 0.0, text=text)
    with buttons:
        if ui.cancel_resume(job, key="job") is not None:
            st.rerun()
    if job.get("cancel_requested") and job["status"] == "running":
        st.caption("Cancel requested: the job stops after its current step.")
    if job.get("error"):
        st.error(f"{job['error']['code']}: {job['error']['message']}")


def series(conn: data.Conn, job: dict[str, Any]) -> pd.DataFrame:
    version = data.version(job)
    names = data.metric_names(conn, job["id"], version)
    wanted = {n for _, group in CURVES + GRO_CURVES for n in group} | {
        n for b in BANDS for n in b[1:]
    }
    wanted |= {n for n in names if "entropy" in n}
    drawn = tuple(sorted(wanted & set(names)))
    answer = data.metrics(conn, job["id"], drawn, data.DETAIL_POINTS, version) if drawn else {}
    frame = frames.series_frame(answer, job["id"])
    frame["x"] = frame["step"].astype("float64")
    return frame


def curve_charts(
    frame: pd.DataFrame, specs: list[tuple[str, tuple[str, ...]]]
) -> list[charts.Chart]:
    """One chart per spec with data: its metrics overlaid, coloured by name."""
    out = []
    for title, names in specs:
        rows = frame[frame["name"].isin(names)]
        if not rows.empty:
            out.append(charts.curves(rows, "step", title, color="name"))
    return out


def band_charts(frame: pd.DataFrame, specs: list[tuple[str, str, str]]) -> list[charts.Chart]:
    """One mean ± std chart per spec whose mean the job logged."""
    out = []
    for title, mean, std in specs:
        wide = frame[frame["name"].isin((mean, std))].pivot_table(
            index="step", columns="name", values="value"
        )
        if mean not in wide:
            continue
        spread = wide.get(std, 0.0)
        band = pd.DataFrame({"x": wide.index.astype("float64"), "mean": wide[mean]})
        band["lo"], band["hi"] = band["mean"] - spread, band["mean"] + spread
        out.append(charts.band(band.dropna(subset=["mean"]), "step", title))
    return out


def grid(drawn: list[charts.Chart]) -> None:
    columns = st.columns(2)
    for i, chart in enumerate(drawn):
        with columns[i % 2]:
            ui.draw(chart)


def curves_tab(frame: pd.DataFrame) -> None:
    entropy = [(n, (n,)) for n in sorted(frame["name"].unique()) if "entropy" in n]
    grid(band_charts(frame, BANDS[:1]) + curve_charts(frame, CURVES[:3] + entropy + CURVES[3:]))


def distribution_charts(conn: data.Conn, job: dict[str, Any]) -> list[charts.Chart]:
    """Heatmaps of per-step histograms of the samples' advantage, anchor distance, weight."""
    steps = data.sample_steps(conn, job["id"], data.version(job))
    if not steps:
        st.info("No samples yet: distributions appear once the job has logged samples.")
        return []
    picked = frames.evenly_spaced(steps, HEATMAP_STEPS)
    batches = data.parallel(lambda s: data.samples(conn, job["id"], s), picked)
    samples = pd.DataFrame([s for batch in batches for s in batch])
    st.caption(
        f"Per-step histograms of {len(samples)} samples from {len(picked)} of "
        f"{len(steps)} sampled steps."
    )
    out = []
    for column, title in DISTRIBUTIONS:
        hist = frames.step_histograms(samples, column)
        if hist.empty:
            st.caption(f"{title}: the samples carry no {column}.")
        else:
            out.append(charts.heatmap(hist, title, column))
    return out


def gro_tab(conn: data.Conn, job: dict[str, Any], frame: pd.DataFrame) -> None:
    heatmaps = distribution_charts(conn, job)
    grid(heatmaps + band_charts(frame, BANDS[1:]) + curve_charts(frame, GRO_CURVES))


def samples_tab(conn: data.Conn, job: dict[str, Any]) -> None:
    steps = data.sample_steps(conn, job["id"], data.version(job))
    if not steps:
        st.info("No samples yet.")
        return
    step_col, text_col = st.columns([1, 2])
    step = step_col.selectbox("Step", steps[::-1], key="job-sample-step")
    needle = text_col.text_input("Prompt or completion contains", key="job-sample-text")
    table = pd.DataFrame(data.samples(conn, job["id"], step))
    table = table[["prompt", "completion", "reward", "advantage", "anchor_distance", "weight"]]
    if needle:
        hit = table["prompt"].str.contains(needle, regex=False) | table["completion"].str.contains(
            needle, regex=False
        )
        table = table[hit]
    st.dataframe(table, hide_index=True, key="job-samples")


def events_tab(conn: data.Conn, job: dict[str, Any]) -> None:
    events = data.events(conn, job["id"], data.version(job))
    table = pd.DataFrame(events, columns=["created_at", "step", "kind", "message"])
    table["created_at"] = pd.to_datetime(table["created_at"])
    st.dataframe(table.iloc[::-1], hide_index=True, key="job-events")


def checkpoints_tab(conn: data.Conn, job: dict[str, Any]) -> None:
    rows = data.checkpoints(conn, job["id"], data.version(job))
    if not rows:
        st.info("No checkpoints yet.")
        return
    table = pd.DataFrame(rows, columns=["step", "bytes", "created_at", "id", "download_url"])
    table["created_at"] = pd.to_datetime(table["created_at"])
    link = st.column_config.LinkColumn("download", display_text="download .tar")
    st.dataframe(
        table, hide_index=True, column_config={"download_url": link}, key="job-checkpoints"
    )
    st.caption("Download links are signed and expire after an hour; they need no API key.")


def body(job_id: str) -> None:
    conn = ui.conn()
    try:
        job = data.job(conn, job_id)
    except (ApiError, UnreachableError) as exc:
        ui.show_error(exc, f"could not load {job_id}")
        return
    if (job["status"] in ui.ACTIVE) != st.session_state["job-live"]:
        # The refresh interval is fixed when the fragment is defined: rerun the page to
        # start (or stop) reloading.
        st.rerun()
    header(job)
    frame = series(conn, job)
    if frame.empty:
        st.info(f"No metrics yet: the job is {job['status']}. Curves appear after its first steps.")
    tabs = st.tabs(["Curves", "GRO quantities", "Samples", "Events", "Checkpoints", "Spec"])
    with tabs[0]:
        curves_tab(frame)
    with tabs[1]:
        gro_tab(conn, job, frame)
    with tabs[2]:
        samples_tab(conn, job)
    with tabs[3]:
        events_tab(conn, job)
    with tabs[4]:
        checkpoints_tab(conn, job)
    with tabs[5]:
        st.code(yaml.safe_dump(job["spec"], sort_keys=False), language="yaml")
    if job["status"] in ui.ACTIVE:
        st.caption(f"Live: reloading every {ui.REFRESH_S:.0f}s while the job is {job['status']}.")


def choose() -> str | None:
    current = st.query_params.get("id")
    try:
        jobs = data.jobs(ui.conn())
    except (ApiError, UnreachableError) as exc:
        ui.show_error(exc, "could not list jobs")
        return current
    if not jobs and not current:
        st.info("No jobs yet: submit one on **New job**.")
        return None
    chosen = ui.pick_job(jobs, current, key=f"job-pick-{current}")
    if chosen and chosen != current:
        st.query_params["id"] = chosen
    return chosen


def is_active(job_id: str) -> bool:
    try:
        return data.job(ui.conn(), job_id)["status"] in ui.ACTIVE
    except (ApiError, UnreachableError):
        return False  # the body says what went wrong


job_id = choose()
if job_id:
    st.session_state["job-live"] = is_active(job_id)
    st.fragment(run_every=ui.REFRESH_S if st.session_state["job-live"] else None)(body)(job_id)
