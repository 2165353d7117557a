"""Small pieces every page shares: the connection, error boxes, status labels, job pickers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import streamlit as st

from dashboard import data
from dashboard.charts import Chart
from dashboard.data import ApiError, Conn, UnreachableError

ACTIVE = ("queued", "running")
RESUMABLE = ("failed", "cancelled", "paused")
STATUS_COLOURS = {
    "queued": "gray",
    "running": "blue",
    "succeeded": "green",
    "failed": "red",
    "cancelled": "orange",
    "paused": "violet",
}
REFRESH_S = 5.0
"""How often pages showing an active job reload it."""


def conn() -> Conn:
    """The connection app.py established (it stops before a page runs without one)."""
    return st.session_state["conn"]


def status_label(status: str) -> str:
    return f":{STATUS_COLOURS.get(status, 'gray')}[{status}]"


def job_label(job: Mapping[str, Any]) -> str:
    """Name, method, status and the id's tail: Streamlit tells options apart by their labels,
    and names need not be unique."""
    name = job.get("name") or job["id"]
    return f"{name} · {job['method']} · {job['status']} · …{job['id'][-6:]}"


def show_error(exc: Exception, what: str = "") -> None:
    """An API error as the user should see it: what failed, where (field / line), and every
    detail the API listed."""
    prefix = f"{what}: " if what else ""
    if isinstance(exc, UnreachableError):
        st.error(f"{prefix}the API did not answer ({exc})", icon=":material/cloud_off:")
        return
    if not isinstance(exc, ApiError):
        raise exc
    where = " · ".join(
        p
        for p in (
            f"field `{exc.field}`" if exc.field else "",
            f"line {exc.line}" if exc.line else "",
        )
        if p
    )
    st.error(f"{prefix}{exc} ({exc.code}{', ' + where if where else ''})", icon=":material/error:")
    extra = [d for d in exc.details if d.get("message") != str(exc)]
    if extra:
        st.markdown("\n".join(f"- {_problem(d)}" for d in extra[:50]))


def _problem(problem: Mapping[str, Any]) -> str:
    where = ", ".join(
        p
        for p in (
            f"line {problem['line']}" if problem.get("line") else "",
            f"`{problem['field']}`" if problem.get("field") else "",
        )
        if p
    )
    return f"{problem.get('message', '')}" + (f" ({where})" if where else "")


def pick_job(jobs: Sequence[Mapping[str, Any]], current: str | None, key: str) -> str | None:
    """A selectbox of `jobs` (labels with name, method and status), preselecting `current`."""
    ids = [j["id"] for j in jobs]
    labels = {j["id"]: job_label(j) for j in jobs}
    if current and current not in labels:
        ids, labels = [current, *ids], {current: current, **labels}
    index = ids.index(current) if current in ids else None
    return st.selectbox(
        "Job", ids, index=index, format_func=labels.get, key=key, placeholder="Choose a job"
    )


def cancel_resume(job: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    """Cancel and Resume buttons for `job` (each enabled only where the API would accept it);
    the job as the API returned it after a click, else None."""
    left, right = st.columns(2)
    can_cancel = job["status"] in ACTIVE and not job.get("cancel_requested")
    try:
        if left.button("Cancel", key=f"{key}-cancel", disabled=not can_cancel, width="stretch"):
            return data.cancel(conn(), job["id"])
        if right.button(
            "Resume", key=f"{key}-resume", disabled=job["status"] not in RESUMABLE, width="stretch"
        ):
            return data.resume(conn(), job["id"])
    except (ApiError, UnreachableError) as exc:
        show_error(exc, "the action failed")
    return None


def draw(chart: Chart) -> None:
    # Faceted charts have a fixed width per panel; Streamlit would fight it when stretching.
    width = "content" if "facet" in chart.spec else "stretch"
    st.vega_lite_chart(chart.frame, chart.spec, width=width)
