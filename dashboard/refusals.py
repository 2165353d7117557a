"""The API's refusals shown where they belong: each problem (422 `details`, each with the key
path it names) under the widget of that path, the rest above the submit button.

    refusals.field(KEY, "train.lr", st.text_input, "Learning rate")   # a widget + its errors
    refusals.record(KEY, exc, sent)    # after an ApiError: kept in the session, then st.rerun
    refusals.show_rest(KEY, "spec")    # the summary and what no widget showed

A form keys its refusal by its own name in `st.session_state`, with what it sent: a form that
changed since is no longer what was refused (`stale`), and its old complaints go.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from dashboard.data import ApiError


def record(key: str, exc: ApiError, sent: Any) -> None:
    """Keep the refusal of `sent` for the next run to draw under its fields."""
    summary = {"message": str(exc), "field": exc.field, "code": exc.code}
    problems = [{"message": d["message"], "field": d.get("field")} for d in exc.details]
    st.session_state[key] = {"sent": sent, "summary": summary, "problems": problems or [summary]}


def forget(key: str) -> None:
    st.session_state.pop(key, None)


def stale(key: str, sent: Any) -> bool:
    """Drop the refusal when the form no longer describes what was refused; whether it did."""
    refused = st.session_state.get(key)
    if refused is not None and refused["sent"] != sent:
        forget(key)
        return True
    return False


def problems_at(key: str, path: str) -> list[str]:
    """Messages of the last refusal that name `path` (or a key under it), marking them shown."""
    refused = st.session_state.get(key, {"problems": []})
    hits = [
        p
        for p in refused["problems"]
        if p["field"] == path or (p["field"] or "").startswith(path + ".")
    ]
    for p in hits:
        p["shown"] = True
    # Under its own widget a message need not repeat the key path it starts with.
    return [p["message"].removeprefix(f"{p['field']}: ") for p in hits]


def show_at(key: str, path: str) -> None:
    for message in problems_at(key, path):
        st.error(message, icon=":material/error:")


def field(key: str, path: str, widget: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A widget for key `path` (its widget key `<key>-<path>`), the complaints about it under."""
    value = widget(*args, key=f"{key}-{path}", **kwargs)
    show_at(key, path)
    return value


def show_rest(key: str, what: str) -> None:
    """The refusal's summary, and each problem no widget has shown."""
    refused = st.session_state.get(key)
    if not refused:
        return
    summary = refused["summary"]
    st.error(
        f"The API refused the {what}: {summary['message']} ({summary['code']})",
        icon=":material/error:",
    )
    for p in [p for p in refused["problems"] if not p.get("shown")]:
        st.markdown(f"- {p['message']}")
