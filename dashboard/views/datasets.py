"""Datasets: what is stored (kind, rows, statistics), a preview of rows, and uploads with the
API's validation report (every problem with its line and field) before or instead of storing."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data, ui
from dashboard.data import ApiError, UnreachableError

PAGE_ROWS = 20
STORED = "datasets-stored"


def listing(conn: data.Conn) -> None:
    listed = data.datasets(conn)
    if not listed:
        st.info("No datasets yet: upload a .jsonl or .parquet file below.")
        return
    table = pd.DataFrame(
        listed, columns=["id", "filename", "kind", "rows", "bytes", "format", "created_at"]
    )
    table["created_at"] = pd.to_datetime(table["created_at"])
    st.dataframe(table, hide_index=True, key="datasets-table")
    labels = {
        d["id"]: f"{d['filename']} · {d['kind']} · {d['rows']} rows · {d['id']}" for d in listed
    }
    chosen = st.selectbox("Preview", list(labels), format_func=labels.get, key="datasets-pick")
    dataset = next(d for d in listed if d["id"] == chosen)
    pages = max(1, -(-dataset["rows"] // PAGE_ROWS))
    page = st.number_input("Page", 1, pages, 1, key="datasets-page", help=f"{pages} pages")
    rows = data.dataset_rows(conn, chosen, (page - 1) * PAGE_ROWS, PAGE_ROWS)
    st.dataframe(pd.DataFrame(rows["data"]), key="datasets-rows")
    with st.expander("Statistics"):
        st.json(dataset["stats"])


def report(result: dict) -> None:
    """A validation report: the verdict, every problem, and the statistics."""
    kind = result.get("kind") or "unknown kind"
    if result["ok"]:
        st.success(f"Valid: {result['rows']} rows of kind **{kind}**.")
    else:
        st.error(f"{result['error_count']} problem(s) in {result['rows']} rows ({kind}).")
        problems = pd.DataFrame(result["errors"], columns=["line", "field", "code", "message"])
        st.dataframe(problems, hide_index=True, key="datasets-problems")
        if result["error_count"] > len(result["errors"]):
            st.caption(f"The first {len(result['errors'])} of {result['error_count']} are listed.")
    if result.get("stats"):
        with st.expander("Statistics", expanded=result["ok"]):
            st.json(result["stats"])


def uploader(conn: data.Conn) -> None:
    st.subheader("Upload")
    st.caption(
        "One kind per file: prompt (prompt, + fields rewards read), preference (prompt, chosen, "
        "rejected), unpaired (prompt, completion, label) or sft (prompt, completion — or messages)."
    )
    file = st.file_uploader("Dataset file", type=["jsonl", "json", "parquet"], key="datasets-file")
    validate_col, upload_col = st.columns(2)
    validate = validate_col.button("Validate", disabled=file is None, width="stretch")
    store = upload_col.button("Upload", type="primary", disabled=file is None, width="stretch")
    if file is None or not (validate or store):
        return
    content = file.getvalue()
    try:
        if validate:
            report(data.validate(conn, file.name, content))
        else:
            stored = data.upload(conn, file.name, content)
            st.session_state[STORED] = (
                f"Stored {stored['filename']} as `{stored['id']}` "
                f"({stored['kind']}, {stored['rows']} rows)."
            )
            st.rerun()  # the listing above shows the new dataset
    except (ApiError, UnreachableError) as exc:
        ui.show_error(exc, f"{file.name} was refused" if store else "validation failed")


st.title("Datasets")
if STORED in st.session_state:
    st.success(st.session_state.pop(STORED))
try:
    listing(ui.conn())
except (ApiError, UnreachableError) as exc:
    ui.show_error(exc, "could not list datasets")
uploader(ui.conn())
