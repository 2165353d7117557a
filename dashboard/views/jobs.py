"""Jobs: every job with its progress, filters, links to the detail page, cancel and resume.

The table sits in a fragment that reloads itself every few seconds while any listed job is
queued or running, so progress moves without rerunning (and redrawing) the whole page.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import data, frames, ui
from dashboard.data import ApiError, UnreachableError

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
ALL = "all"

COLUMNS = {
    "name": st.column_config.TextColumn("name", width="medium"),
    "progress": st.column_config.ProgressColumn(
        "progress", min_value=0.0, max_value=1.0, format="percent"
    ),
    "eta": st.column_config.TextColumn("ETA"),
    "final reward": st.column_config.NumberColumn("final reward", format="%.3f"),
    "created": st.column_config.DatetimeColumn("created", format="YYYY-MM-DD HH:mm"),
    "open": st.column_config.LinkColumn("detail", display_text="open ↗"),
}


def method_names() -> list[str]:
    """The registry's methods (GET /v1/methods), for the filter; none when it cannot be read."""
    try:
        return [m["name"] for m in data.methods(ui.conn())]
    except (ApiError, UnreachableError) as exc:
        ui.show_error(exc, "could not list the methods")
        return []


def filters() -> dict[str, Any]:
    status_col, method_col, name_col = st.columns([1, 1, 2])
    status = status_col.selectbox("Status", (ALL, *STATUSES), key="jobs-status")
    method = method_col.selectbox("Method", (ALL, *method_names()), key="jobs-method")
    name = name_col.text_input("Name contains", key="jobs-name")
    return {
        "status": None if status == ALL else status,
        "method": None if method == ALL else method,
        "name": name.strip() or None,
    }


def table(chosen: dict[str, Any]) -> None:
    try:
        jobs = data.jobs(ui.conn(), **chosen)
    except (ApiError, UnreachableError) as exc:
        ui.show_error(exc, "could not list jobs")
        return
    live = any(j["status"] in ui.ACTIVE for j in jobs)
    if live != st.session_state["jobs-live"]:
        # The refresh interval is fixed when the fragment is defined: rerun the page to
        # start (or stop) refreshing.
        st.rerun()
    if not jobs:
        filtered = any(chosen.values())
        st.info(
            "No job matches these filters."
            if filtered
            else "No jobs yet: submit one on **New job**."
        )
        return
    counts = {s: sum(j["status"] == s for j in jobs) for s in STATUSES}
    st.caption(
        " · ".join(f"{ui.status_label(s)} {n}" for s, n in counts.items() if n)
        + (f" · refreshing every {ui.REFRESH_S:.0f}s" if live else "")
    )
    st.dataframe(frames.jobs_frame(jobs), column_config=COLUMNS, hide_index=True, key="jobs-table")
    actions(jobs)


def actions(jobs: list[dict[str, Any]]) -> None:
    """Open, cancel or resume one job."""
    pick_col, open_col, act_col = st.columns([3, 1, 2], vertical_alignment="bottom")
    with pick_col:
        job_id = ui.pick_job(jobs, st.session_state.get("jobs-pick"), key="jobs-pick")
    if job_id is None:
        return
    job = next(j for j in jobs if j["id"] == job_id)
    if open_col.button("Open", key="jobs-open", width="stretch"):
        st.switch_page("views/job.py", query_params={"id": job_id})
    with act_col:
        changed = ui.cancel_resume(job, key="jobs")
    if changed is not None:
        st.toast(f"{changed.get('name') or changed['id']}: {changed['status']}")
        st.rerun()


def any_active(chosen: dict[str, Any]) -> bool:
    try:
        return any(j["status"] in ui.ACTIVE for j in data.jobs(ui.conn(), **chosen))
    except (ApiError, UnreachableError):
        return False  # the table says what went wrong


st.title("Jobs")
chosen = filters()
st.session_state["jobs-live"] = any_active(chosen)
interval = ui.REFRESH_S if st.session_state["jobs-live"] else None
st.fragment(run_every=interval)(table)(chosen)
