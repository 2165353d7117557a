"""gro's dashboard: `streamlit run dashboard/app.py`.

The API's URL and key come from GRO_API_URL / GRO_API_KEY (else from `gro login`'s config
file), or from the sign-in box. Every
page then finds the checked connection in `st.session_state["conn"]`.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from client.http import read_config
from dashboard import data
from dashboard.data import ApiError, Conn, UnreachableError

HERE = Path(__file__).parent


@st.cache_data(ttl=10, show_spinner=False)
def connection_problem(conn: Conn) -> tuple[str, str] | None:
    """(kind, message) when the API cannot be used with `conn`; None when it can. Cached
    briefly: every rerun asks, and one request per ten seconds is enough to notice."""
    try:
        data.check(conn)
    except UnreachableError as exc:
        return "unreachable", f"Cannot reach the gro API at {conn.url}: {exc.__cause__ or exc}"
    except ApiError as exc:
        if exc.status == 401:
            return "bad_key", f"The API at {conn.url} refused the key: {exc}"
        return "error", f"The API at {conn.url} answered {exc.status}: {exc}"
    return None


def sign_in() -> None:
    """The sign-in box: shown when no connection is configured, or the configured one fails."""
    st.title("gro")
    problem = st.session_state.get("problem")
    if problem:
        kind, message = problem
        icon = ":material/cloud_off:" if kind == "unreachable" else ":material/key_off:"
        st.error(message, icon=icon)
        if kind == "unreachable":
            st.caption("Start the stack with `gro up`, or check GRO_API_URL.")
        elif kind == "bad_key":
            st.caption("Make a key with `gro keys create --owner NAME`.")
    tried = st.session_state.get("tried") or data.conn_from_env() or Conn(read_config()["url"], "")
    with st.form("sign-in"):
        url = st.text_input("API URL", value=tried.url)
        key = st.text_input("API key", value=tried.key, type="password")
        if st.form_submit_button("Connect", type="primary"):
            st.session_state["tried"] = Conn(url.rstrip("/"), key.strip())
            connection_problem.clear()
            st.rerun()


def connect() -> Conn | None:
    """The connection to use, checked; None (and the problem recorded) when there is none."""
    candidate = st.session_state.get("tried") or data.conn_from_env()
    if candidate is None or not candidate.key:
        st.session_state["problem"] = None
        return None
    st.session_state["problem"] = connection_problem(candidate)
    return None if st.session_state["problem"] else candidate


def sidebar(conn: Conn) -> None:
    with st.sidebar:
        st.caption(f"API {conn.url} · key {conn.key[:8]}…")
        if st.button("Sign out", key="sign-out"):
            st.session_state.pop("conn", None)
            st.session_state["tried"] = Conn(conn.url, "")
            st.rerun()


st.set_page_config(page_title="gro", page_icon=":material/monitoring:", layout="wide")
st.set_option("client.toolbarMode", "viewer")  # no "Deploy" button: users run, not develop
conn = connect()
if conn is None:
    st.navigation([st.Page(sign_in, title="Sign in", url_path="sign-in")]).run()
else:
    st.session_state["conn"] = conn
    sidebar(conn)
    pages = [
        st.Page(
            HERE / "views/jobs.py",
            title="Jobs",
            icon=":material/list:",
            url_path="jobs",
            default=True,
        ),
        st.Page(
            HERE / "views/job.py", title="Job detail", icon=":material/search:", url_path="job"
        ),
        st.Page(
            HERE / "views/compare.py",
            title="Compare",
            icon=":material/stacked_line_chart:",
            url_path="compare",
        ),
        st.Page(
            HERE / "views/datasets.py",
            title="Datasets",
            icon=":material/dataset:",
            url_path="datasets",
        ),
        st.Page(
            HERE / "views/new_job.py", title="New job", icon=":material/add:", url_path="new_job"
        ),
        st.Page(
            HERE / "views/new_comparison.py",
            title="New comparison",
            icon=":material/compare_arrows:",
            url_path="new_comparison",
        ),
        st.Page(
            HERE / "views/new_evaluation.py",
            title="New evaluation",
            icon=":material/fact_check:",
            url_path="new_evaluation",
        ),
        st.Page(
            HERE / "views/playground.py",
            title="Playground",
            icon=":material/chat:",
            url_path="playground",
        ),
    ]
    st.navigation(pages).run()
