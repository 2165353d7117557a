"""dashboard.forms: the New job form's pure pieces (argument text, tasks by kind, merging)."""

from __future__ import annotations

import copy

import pytest

from dashboard import forms
from gro_core.spec import apply_overrides

FLOAT = {"name": "beta", "type": "float", "default": 0.1, "doc": ""}
OPTIONAL = {"name": "epsilon_high", "type": "float | None", "default": None, "doc": ""}


@pytest.mark.parametrize(
    ("value", "text"), [(0.1, "0.1"), (20.0, "20.0"), (None, ""), (False, "false"), ("x", "x")]
)
def test_arg_text_reads_back_as_the_default(value, text):
    assert forms.arg_text(value) == text
    arg = {"name": "a", "type": type(value).__name__ + " | None", "default": value}
    assert forms.parse_arg(forms.arg_text(value), arg) == value


@pytest.mark.parametrize(
    ("text", "arg", "expected"),
    [
        ("0.3", FLOAT, 0.3),
        (" 1e-5 ", FLOAT, 1e-5),  # YAML alone reads this as a string
        ("", FLOAT, 0.1),  # cleared: the default
        ("", OPTIONAL, None),  # cleared: null, which the argument allows
        ("0.28", OPTIONAL, 0.28),
        ("lots", FLOAT, "lots"),  # passed on: the API says what is wrong
        ("[1, 2", FLOAT, "[1, 2"),
        ("true", {"name": "b", "type": "bool", "default": False}, True),
    ],
)
def test_parse_arg(text, arg, expected):
    assert forms.parse_arg(text, arg) == expected


def test_changed_args_keeps_only_what_differs_from_the_default():
    args = [FLOAT, OPTIONAL, {"name": "baseline", "type": "bool", "default": False}]
    assert forms.changed_args(args, {"beta": 0.1, "epsilon_high": None, "baseline": False}) == {}
    chosen = forms.changed_args(args, {"beta": 0.2, "epsilon_high": None, "baseline": True})
    assert chosen == {"beta": 0.2, "baseline": True}


def test_tasks_for_filters_by_kind_in_order():
    tasks = [
        {"name": "builtin:a", "kind": "prompt"},
        {"name": "builtin:b", "kind": "preference"},
        {"name": "builtin:c", "kind": "prompt"},
    ]
    assert forms.tasks_for(tasks, ["prompt"]) == ["builtin:a", "builtin:c"]
    assert forms.tasks_for(tasks, {"preference", "unpaired"}) == ["builtin:b"]
    assert forms.tasks_for(tasks, []) == []


BASE = {"model": "m", "train": {"lr": 1.0, "seed": 0}, "lora": None, "rollout": {"stop": ["a"]}}
MERGES = [
    {"train.seed": 3, "method_args": {"beta": 0.5}},
    {"train": {"lr": 2.0}, "train.seed": 5},
    {"rollout.stop": ["!"]},
    {"lora.r": 4},
    {"a.b.c": 1, "a": {"b.d": 2}},
    {"model": "other", "train": {"steps": 10}},
]


@pytest.mark.parametrize("overrides", MERGES)
def test_merge_agrees_with_the_apis_overrides(overrides):
    # The API merges comparison variants with gro_core's apply_overrides: one rule for both.
    before = copy.deepcopy(BASE)
    assert forms.merge(BASE, overrides) == apply_overrides(BASE, overrides)
    assert before == BASE  # not modified


def test_merge_by_hand():
    merged = forms.merge(BASE, {"train.seed": 3, "rollout": {"stop": ["!"]}})
    assert merged["train"] == {"lr": 1.0, "seed": 3} and merged["rollout"] == {"stop": ["!"]}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model.size": 1}, "cannot set model.size: model is 'm', not a mapping"),
        (["train.lr", 1], "expected keys and values, got list"),
    ],
)
def test_merge_refuses_what_it_cannot_place(overrides, message):
    with pytest.raises(ValueError, match=message):
        forms.merge(BASE, overrides)
