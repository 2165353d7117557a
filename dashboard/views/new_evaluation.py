"""New evaluation: chosen checkpoints (or model ids) evaluated on held-out prompts, one
evaluation each (POST /v1/evaluations, run by a light worker), their results polled into one
table. A refusal shows under the field it names; the checkpoints before the refused one are
started, the rest are not.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard import data, forms, refusals, ui
from dashboard.data import ApiError, UnreachableError

FORM = "eval"
STARTED = "eval-started"  # session key of the evaluations this page started: [{id, label}]
RESULTS = ("eval/reward", "eval/accuracy", "eval/pass@1", "eval/kl_ref", "eval/distinct_2")


def models_section() -> tuple[list[str], dict[str, str]]:
    choices = data.checkpoint_choices(ui.conn())
    picked = st.multiselect(
        "Checkpoints", list(choices), format_func=choices.get, key="eval-picked"
    )
    typed = st.text_input(
        "Other models",
        key="eval-typed",
        placeholder="builtin:tiny-llama, job-…, org/name",
        help="comma-separated: model ids, job ids (their last checkpoint), checkpoint ids",
    )
    refusals.show_at(FORM, "model")
    models = [*picked, *(m.strip() for m in typed.split(",") if m.strip())]
    return models, {m: choices.get(m, m) for m in models}


def dataset_section() -> str:
    conn = ui.conn()
    tasks = forms.tasks_for(data.tasks(conn), ["prompt"])
    prompts = [d for d in data.datasets(conn) if d["kind"] == "prompt"]
    labels = {t: t for t in tasks}
    labels |= {d["id"]: f"{d['filename']} · {d['rows']} rows · {d['id']}" for d in prompts}
    return refusals.field(
        FORM, "dataset", st.selectbox, "Held-out prompts", list(labels), format_func=labels.get
    )


def settings_section() -> dict[str, Any]:
    cols = st.columns(6)
    with cols[0]:
        prompts = refusals.field(FORM, "num_prompts", st.number_input, "Prompts", value=64, step=8)
    with cols[1]:
        n = refusals.field(
            FORM, "num_generations", st.number_input, "Samples per prompt", value=4, step=1
        )
    with cols[2]:
        tokens = refusals.field(
            FORM, "max_new_tokens", st.number_input, "Max new tokens", value=32, step=8
        )
    with cols[3]:
        temperature = refusals.field(
            FORM, "temperature", st.number_input, "Temperature", value=1.0, step=0.1
        )
    with cols[4]:
        seed = refusals.field(FORM, "seed", st.number_input, "Seed", value=0, step=1)
    with cols[5]:
        kl = refusals.field(FORM, "with_reference", st.checkbox, "KL to reference", value=True)
    return {
        "num_prompts": prompts,
        "num_generations": n,
        "max_new_tokens": tokens,
        "temperature": temperature,
        "seed": seed,
        "with_reference": kl,
    }


def start(models: list[str], labels: dict[str, str], request: dict[str, Any]) -> None:
    """One evaluation per model; the first refusal stops the rest and is shown by field."""
    if not models:
        st.error("Choose at least one checkpoint or model.", icon=":material/error:")
        return
    started = []
    try:
        for model in models:
            out = data.start_evaluation(ui.conn(), {"model": model, **request})
            started.append({"id": out["id"], "label": labels[model]})
    except ApiError as exc:
        refusals.record(FORM, exc, (models, request))
        st.session_state[STARTED] = started + st.session_state.get(STARTED, [])
        st.rerun()  # the messages belong under their widgets, drawn above this button
    except UnreachableError as exc:
        ui.show_error(exc, "not started")
        return
    refusals.forget(FORM)
    st.session_state[STARTED] = started + st.session_state.get(STARTED, [])


def results_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per evaluation: what it evaluated, its status and its main results."""
    table = []
    for started, out in rows:
        results = out["results"]
        table.append(
            {
                "evaluation": out["id"],
                "model": started["label"],
                "dataset": out["dataset"],
                "status": out["status"],
                **{name.removeprefix("eval/"): results.get(name) for name in RESULTS},
                "error": (out["error"] or {}).get("message"),
            }
        )
    return pd.DataFrame(table)


def results() -> None:
    started = st.session_state[STARTED]
    outs = data.parallel(lambda s: data.evaluation(ui.conn(), s["id"]), started)
    st.dataframe(results_table(list(zip(started, outs, strict=True))), hide_index=True)
    active = any(o["status"] in ui.ACTIVE for o in outs)
    if active != st.session_state.get("eval-active"):
        st.session_state["eval-active"] = active
        st.rerun()  # the whole page, polling or not as the evaluations are


st.title("New evaluation")
try:
    models, labels = models_section()
    dataset = dataset_section()
except (ApiError, UnreachableError) as exc:
    ui.show_error(exc, "could not load the choices")
    st.stop()
request = {"dataset": dataset, **settings_section()}
if refusals.stale(FORM, (models, request)):
    st.rerun()
refusals.show_rest(FORM, "evaluation")
if st.button("Start evaluation", type="primary", key="eval-start"):
    start(models, labels, request)
if st.session_state.get(STARTED):
    st.subheader("Started here")
    polling = st.session_state.get("eval-active", True)
    st.fragment(results, run_every=ui.REFRESH_S if polling else None)()
