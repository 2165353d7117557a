"""New job: a form that builds a job spec from a method preset and a dataset (or a built-in
task), shows the spec, and submits it. The methods, their arguments and the tasks come from
the API (GET /v1/methods, GET /v1/tasks), so a method added to the registry shows here with
its arguments. The API validates: its errors appear under the field they name (`train.lr`),
the rest above the submit button.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st
import yaml

from dashboard import data, forms, refusals, ui
from dashboard.data import ApiError, UnreachableError

FORM = "new"
NONE = "none"
DEFAULT_METHOD = "grpo"


def field(path: str, widget: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A widget for spec key `path`, with the API's complaints about that key under it."""
    return refusals.field(FORM, path, widget, *args, **kwargs)


def number(text: str) -> float | str:
    """A float when the text is one; the text itself otherwise (the API says what is wrong)."""
    try:
        return float(text)
    except ValueError:
        return text


def parse_yaml(text: str, what: str, default: Any) -> Any:
    if not text.strip():
        return default
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        st.error(f"{what} is not valid YAML: {exc}")
        return default


def data_section(method: dict[str, Any]) -> dict[str, Any]:
    name, kinds = method["name"], set(method["kinds"])
    source = st.radio(
        "Data", ["built-in task", "uploaded dataset"], horizontal=True, key="new-source"
    )
    if source == "built-in task":
        tasks = forms.tasks_for(data.tasks(ui.conn()), kinds)
        task = field(
            "data.task", st.selectbox, "Task", tasks, help="generated rows and their rule reward"
        )
        return {"task": task}
    listed = [d for d in data.datasets(ui.conn()) if d["kind"] in kinds]
    if not listed:
        st.info(
            f"No uploaded dataset of a kind {name} trains on "
            f"({', '.join(sorted(kinds))}): upload one on **Datasets**."
        )
    # The id too: Streamlit tells options apart by their labels, and file names repeat.
    labels = {
        d["id"]: f"{d['filename']} · {d['kind']} · {d['rows']} rows · {d['id']}" for d in listed
    }
    train = field("data.train", st.selectbox, "Training set", list(labels), format_func=labels.get)
    options = [NONE, *labels]
    held_out = field(
        "data.eval", st.selectbox, "Held-out set", options, format_func=lambda i: labels.get(i, i)
    )
    return {"train": train, "eval": None if held_out == NONE else held_out}


def train_section() -> dict[str, Any]:
    cols = st.columns(5)
    with cols[0]:
        steps = field("train.steps", st.number_input, "Steps", value=200, step=10)
    with cols[1]:
        batch = field("train.batch_size", st.number_input, "Batch size", value=8, step=1)
    with cols[2]:
        lr = field("train.lr", st.text_input, "Learning rate", value="1e-5")
    with cols[3]:
        warmup = field("train.warmup_steps", st.number_input, "Warm-up steps", value=10, step=1)
    with cols[4]:
        seed = field("train.seed", st.number_input, "Seed", value=0, step=1)
    return {
        "steps": steps,
        "batch_size": batch,
        "lr": number(lr),
        "warmup_steps": warmup,
        "seed": seed,
    }


def rollout_section() -> dict[str, Any]:
    cols = st.columns(3)
    with cols[0]:
        n = field(
            "rollout.num_generations", st.number_input, "Generations per prompt", value=8, step=1
        )
    with cols[1]:
        tokens = field(
            "rollout.max_new_tokens", st.number_input, "Max new tokens", value=32, step=1
        )
    with cols[2]:
        temperature = field(
            "rollout.temperature", st.number_input, "Temperature", value=1.0, step=0.1
        )
    return {"num_generations": n, "max_new_tokens": tokens, "temperature": temperature}


def arg_field(method: str, arg: dict[str, Any]) -> Any:
    """A widget for one of the method's arguments, starting at its default, its doc as help;
    keyed by method, so switching methods starts each from its own defaults."""
    key = f"new-method_args.{method}.{arg['name']}"
    default = arg["default"]
    shown = "null" if default is None else forms.arg_text(default)
    help_text = f"{arg['doc']} ({arg['type']}, default {shown})"
    if arg["type"] == "bool":
        value = st.checkbox(arg["name"], value=bool(default), help=help_text, key=key)
    else:
        text = st.text_input(
            arg["name"], value=forms.arg_text(default), help=help_text, key=key, placeholder=shown
        )
        value = forms.parse_arg(text, arg)
    refusals.show_at(FORM, f"method_args.{arg['name']}")
    return value


def method_args_section(method: dict[str, Any]) -> Any:
    """method_args: the arguments the user changed from their defaults, then the YAML keys."""
    args = method["args"]
    values: dict[str, Any] = {}
    for i, column in enumerate(st.columns(4) if args else []):
        for arg in args[i::4]:
            with column:
                values[arg["name"]] = arg_field(method["name"], arg)
    extra = parse_yaml(
        field(
            "method_args",
            st.text_input,
            "Preset overrides (method_args, YAML)",
            placeholder="{aggregation: token_mean}",
            help="any argument above, or any field of the preset's objective config",
        ),
        "method_args",
        {},
    )
    chosen = forms.changed_args(args, values)
    return chosen | extra if isinstance(extra, dict) else extra


def method_section(methods: list[dict[str, Any]]) -> tuple[dict[str, Any], str, str]:
    """The top row (name, method, model): the chosen method's record, the name, the model."""
    names = [m["name"] for m in methods]
    top = st.columns([2, 1, 2])
    with top[0]:
        name = field("name", st.text_input, "Name", placeholder="optional")
    with top[1]:
        index = names.index(DEFAULT_METHOD) if DEFAULT_METHOD in names else 0
        chosen = field("method", st.selectbox, "Method (preset)", names, index=index)
    with top[2]:
        model = field("model", st.text_input, "Model", value="builtin:tiny-llama")
    method = methods[names.index(chosen)]
    cited = f" {method['citation']}." if method["citation"] else ""
    st.caption(f"{method['summary']} Trains on {', '.join(method['kinds'])} rows.{cited}")
    return method, name, model


def build() -> dict[str, Any]:
    """The spec the form describes (not validated here: the API is the judge)."""
    method, name, model = method_section(data.methods(ui.conn()))
    spec: dict[str, Any] = {
        "model": model,
        "method": method["name"],
        "method_args": method_args_section(method),
        "data": data_section(method),
        "train": train_section(),
    }
    if name.strip():
        spec["name"] = name.strip()
    if method["online"]:
        with st.expander("Rollouts and rewards (online methods)", expanded=True):
            spec["rollout"] = rollout_section()
            rewards = field(
                "rewards",
                st.text_area,
                "Rewards (YAML list; empty: a built-in task's rule reward)",
                placeholder="- {type: exact_match, field: answer, weight: 1.0}",
            )
            spec["rewards"] = parse_yaml(rewards, "rewards", [])
    with st.expander("Evaluation, checkpoints, LoRA and other keys"):
        spec |= other_sections()
        overrides = parse_yaml(
            field(
                "overrides",
                st.text_area,
                "More keys (YAML, dotted)",
                placeholder="train.max_length: 512",
            ),
            "More keys",
            {},
        )
    try:
        return forms.merge(spec, overrides or {})
    except ValueError as exc:
        st.error(f"More keys: {exc}")
        return spec


def other_sections() -> dict[str, Any]:
    cols = st.columns(3)
    with cols[0]:
        every = field("eval.every", st.number_input, "Evaluate every (steps)", value=20, step=10)
    with cols[1]:
        ckpt = field(
            "checkpoint.every", st.number_input, "Checkpoint every (steps)", value=50, step=10
        )
    with cols[2]:
        lora = field("lora", st.checkbox, "LoRA adapters (r=8, alpha=16)")
    return {
        "eval": {"every": every},
        "checkpoint": {"every": ckpt},
        "lora": {"r": 8, "alpha": 16} if lora else None,
    }


def submit(spec: dict[str, Any]) -> None:
    try:
        job = data.submit(ui.conn(), spec)
    except ApiError as exc:
        refusals.record(FORM, exc, spec)
        st.rerun()  # the messages belong under their widgets, drawn above this button
    except UnreachableError as exc:
        ui.show_error(exc, "not submitted")
    else:
        refusals.forget(FORM)
        st.success(f"Submitted `{job['id']}` ({job['status']}).")
        st.page_link(
            "views/job.py",
            label="Open the job",
            icon=":material/search:",
            query_params={"id": job["id"]},
        )


st.title("New job")
try:
    spec = build()
except (ApiError, UnreachableError) as exc:
    ui.show_error(exc, "could not load the form's choices")
    st.stop()
if refusals.stale(FORM, spec):  # the form changed since: old complaints are stale
    st.rerun()
with st.expander("Spec to submit"):
    st.code(yaml.safe_dump(spec, sort_keys=False), language="yaml")
refusals.show_rest(FORM, "spec")
if st.button("Submit", type="primary", key="new-submit"):
    submit(spec)
