"""New comparison: a base spec (YAML), variants as overrides of it and seeds, started as one job
per variant × seed (POST /v1/comparisons). The API validates every variant before it creates
any job: a refusal shows under the variant (or field) it names, and nothing is started.
"""

from __future__ import annotations

from typing import Any

import streamlit as st
import yaml

from dashboard import data, refusals, ui
from dashboard.data import ApiError, UnreachableError

FORM = "cmp"
BASE = """\
model: builtin:tiny-llama
method: grpo
data: {task: builtin:reverse}
train: {steps: 60, batch_size: 8, lr: 1.0e-3}
rollout: {num_generations: 4, max_new_tokens: 8}
eval: {every: 20, num_prompts: 32}
"""
VARIANTS = [("grpo", "{}"), ("rloo", "{method: rloo}")]
MAX_VARIANTS = 8


def yaml_value(text: str, default: Any) -> Any:
    """The YAML typed, or the text itself when it is not YAML (the API says what is wrong)."""
    if not text.strip():
        return default
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def seeds_of(text: str) -> list[int | str]:
    """`0, 1, 2` as integers; a part that is not one is sent as it is, for the API to name."""
    parts = [p.strip() for p in text.replace(" ", ",").split(",") if p.strip()]
    return [int(p) if p.lstrip("-").isdigit() else p for p in parts]


def variant_row(i: int) -> dict[str, Any]:
    label, overrides = VARIANTS[i] if i < len(VARIANTS) else (f"variant-{i + 1}", "{}")
    cols = st.columns([1, 3])
    with cols[0]:
        name = st.text_input(f"Label {i + 1}", value=label, key=f"cmp-label-{i}")
    with cols[1]:
        text = st.text_input(
            f"Overrides {i + 1} (YAML, dotted keys)",
            value=overrides,
            key=f"cmp-overrides-{i}",
            help="merged into the base spec: {method: rloo, train.lr: 3.0e-4}",
        )
    refusals.show_at(FORM, f"variants.{i}")
    return {"label": name, "overrides": yaml_value(text, {})}


def build() -> dict[str, Any]:
    top = st.columns([2, 1, 1])
    with top[0]:
        name = refusals.field(FORM, "name", st.text_input, "Name", value="my-comparison")
    with top[1]:
        seeds = refusals.field(FORM, "seeds", st.text_input, "Seeds", value="0, 1")
    with top[2]:
        count = st.number_input(
            "Variants", min_value=1, max_value=MAX_VARIANTS, value=2, key="cmp-count"
        )
    base = refusals.field(FORM, "base", st.text_area, "Base spec (YAML)", value=BASE, height=180)
    variants = [variant_row(i) for i in range(int(count))]
    refusals.show_at(FORM, "variants")
    return {
        "name": name,
        "base": yaml_value(base, {}),
        "variants": variants,
        "seeds": seeds_of(seeds),
    }


def start(body: dict[str, Any]) -> None:
    try:
        out = data.start_comparison(ui.conn(), body)
    except ApiError as exc:
        refusals.record(FORM, exc, body)
        st.rerun()  # the messages belong under their widgets, drawn above this button
    except UnreachableError as exc:
        ui.show_error(exc, "not started")
    else:
        refusals.forget(FORM)
        st.success(f"Started `{out['id']}`: {len(out['jobs'])} jobs.")
        st.page_link(
            "views/compare.py",
            label="Open the comparison",
            icon=":material/stacked_line_chart:",
            query_params={"comparison": out["id"]},
        )


st.title("New comparison")
body = build()
if refusals.stale(FORM, body):  # the form changed since: old complaints are stale
    st.rerun()
refusals.show_rest(FORM, "comparison")
if st.button("Start comparison", type="primary", key="cmp-start"):
    start(body)
