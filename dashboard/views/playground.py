"""Playground: one prompt (or chat) sent to up to four checkpoints side by side with the same
sampling settings (POST /v1/generations, run by a light worker), the answer polled until every
completion is written. A checkpoint whose job has a reward shows its completion's reward,
scored against the reference fields typed here (a task's `answer`). The API's refusals appear
under the field they name.
"""

from __future__ import annotations

from typing import Any

import streamlit as st
import yaml

from dashboard import data, refusals, ui
from dashboard.data import ApiError, UnreachableError

FORM = "play"
SHOWN = "play-generation"  # session key of the generation on screen: {id, labels, status}
MAX_MODELS = 4
POLL_S = 1.0


def models_section() -> tuple[list[str], dict[str, str]]:
    """The models to prompt (picked checkpoints, then typed ids) and their labels."""
    choices = data.checkpoint_choices(ui.conn())
    cols = st.columns([3, 2])
    with cols[0]:
        picked = st.multiselect(
            f"Checkpoints (up to {MAX_MODELS})",
            list(choices),
            format_func=choices.get,
            key="play-picked",
            placeholder="checkpoints of finished jobs",
        )
    with cols[1]:
        typed = st.text_input(
            "Other models",
            key="play-typed",
            placeholder="builtin:tiny-llama, job-…, org/name",
            help="comma-separated: model ids, job ids (their last checkpoint), checkpoint ids",
        )
    refusals.show_at(FORM, "checkpoints")
    models = [*picked, *(m.strip() for m in typed.split(",") if m.strip())]
    return models, {m: choices.get(m, m) for m in models}


def prompt_section() -> dict[str, Any]:
    """{"prompt": text} or {"messages": [...]}: an empty prompt is sent as none, which the API
    refuses under the field."""
    mode = st.radio("Input", ["Prompt", "Chat"], horizontal=True, key="play-mode")
    if mode == "Prompt":
        text = refusals.field(FORM, "prompt", st.text_area, "Prompt", height=100)
        return {"prompt": text} if text else {}
    system = st.text_input("System message", key="play-system", placeholder="optional")
    user = refusals.field(FORM, "messages", st.text_area, "User message", height=100)
    messages = [{"role": "system", "content": system}] if system else []
    messages += [{"role": "user", "content": user}] if user else []
    refusals.show_at(FORM, "prompt")
    return {"messages": messages}


def sampling_section() -> dict[str, Any]:
    cols = st.columns(4)
    with cols[0]:
        temperature = refusals.field(
            FORM, "sampling.temperature", st.number_input, "Temperature", value=0.7, step=0.1
        )
    with cols[1]:
        top_p = refusals.field(
            FORM, "sampling.top_p", st.number_input, "top_p", value=1.0, step=0.05
        )
    with cols[2]:
        tokens = refusals.field(
            FORM, "sampling.max_new_tokens", st.number_input, "Max new tokens", value=32, step=8
        )
    with cols[3]:
        seed = refusals.field(FORM, "sampling.seed", st.number_input, "Seed", value=0, step=1)
    return {"temperature": temperature, "top_p": top_p, "max_new_tokens": tokens, "seed": seed}


def fields_section() -> dict[str, Any] | str:
    text = refusals.field(
        FORM,
        "fields",
        st.text_input,
        "Reference fields (YAML)",
        placeholder="{answer: cba}",
        help="what a job's reward reads besides the completion, e.g. a built-in task's answer",
    )
    if not text.strip():
        return {}
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text  # the API says what is wrong with it


def build() -> tuple[dict[str, Any], dict[str, str]]:
    models, labels = models_section()
    body = {"checkpoints": models, **prompt_section(), "fields": fields_section()}
    body["sampling"] = sampling_section()
    return body, labels


def generate(body: dict[str, Any], labels: dict[str, str]) -> None:
    try:
        out = data.start_generation(ui.conn(), body)
    except ApiError as exc:
        refusals.record(FORM, exc, body)
        st.rerun()  # the messages belong under their widgets, drawn above this button
    except UnreachableError as exc:
        ui.show_error(exc, "not sent")
    else:
        refusals.forget(FORM)
        st.session_state[SHOWN] = {"id": out["id"], "labels": labels, "status": out["status"]}


def completion_card(index: int, completion: dict[str, Any], label: str) -> None:
    with st.container(border=True, key=f"completion-{index}"):
        st.markdown(f"**{label}**")
        if completion["error"]:
            st.error(completion["error"], icon=":material/error:")
            return
        if completion["completion"] is None:
            st.caption("generating…")
            return
        st.text(completion["completion"] or "(empty)")
        st.caption(f"{completion['tokens']} tokens · ended by {completion['finish_reason']}")
        if completion["reward"] is not None:
            st.metric("Reward", f"{completion['reward']:.3g}")
        elif completion["reward_note"]:
            st.caption(f"No reward: {completion['reward_note']}")


def results() -> None:
    """The generation on screen; polled while the worker has not finished it."""
    shown = st.session_state[SHOWN]
    out = data.generation(ui.conn(), shown["id"])
    st.caption(f"`{out['id']}` · {ui.status_label(out['status'])}")
    if out["error"]:
        st.error(f"{out['error']['message']} ({out['error']['code']})", icon=":material/error:")
    cols = st.columns(len(out["completions"]))
    for i, (col, completion) in enumerate(zip(cols, out["completions"], strict=True)):
        with col:
            label = shown["labels"].get(completion["checkpoint"], completion["checkpoint"])
            completion_card(i, completion, label)
    if out["status"] != shown["status"]:
        shown["status"] = out["status"]
        if out["status"] not in ui.ACTIVE:
            st.rerun()  # the whole page: drawn again without polling


st.title("Playground")
try:
    body, labels = build()
except (ApiError, UnreachableError) as exc:
    ui.show_error(exc, "could not load the checkpoints")
    st.stop()
if refusals.stale(FORM, body):
    st.rerun()
refusals.show_rest(FORM, "request")
if st.button("Generate", type="primary", key="play-generate"):
    generate(body, labels)
if SHOWN in st.session_state:
    active = st.session_state[SHOWN]["status"] in ui.ACTIVE
    st.fragment(results, run_every=POLL_S if active else None)()
