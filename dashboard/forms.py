"""Pure pieces of the New job form (no I/O, no Streamlit): method arguments as text and back,
the tasks a method can train on, and overrides merged into a spec.

The form is built from the API's answers (GET /v1/methods, GET /v1/tasks), so a method added
to the registry appears with its arguments without a change here.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from typing import Any

import yaml


def arg_text(value: Any) -> str:
    """A default as the text a field starts with: empty for null, strings bare, else JSON
    (which YAML reads back)."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def parse_arg(text: str, arg: Mapping[str, Any]) -> Any:
    """The value typed for `arg` (a GET /v1/methods argument: name, type, default, doc).

    Empty text means null for an optional argument (`float | None`), else the default. Text
    that is not YAML, or not a number for a numeric type, is passed on as it is: the API says
    what is wrong with it.
    """
    text = text.strip()
    if not text:
        return None if "None" in arg["type"] else arg["default"]
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str) and ("float" in arg["type"] or "int" in arg["type"]):
        try:  # YAML reads 1e-5 (no dot) as a string
            return float(text)
        except ValueError:
            return text
    return value


def changed_args(args: Iterable[Mapping[str, Any]], values: Mapping[str, Any]) -> dict[str, Any]:
    """`method_args`: the values that differ from their argument's default (an untouched form
    submits none, so the spec shows only what the user chose)."""
    return {a["name"]: values[a["name"]] for a in args if values[a["name"]] != a["default"]}


def tasks_for(tasks: Iterable[Mapping[str, Any]], kinds: Iterable[str]) -> list[str]:
    """Names of the built-in tasks (GET /v1/tasks) whose rows are of one of `kinds`."""
    accepted = set(kinds)
    return [t["name"] for t in tasks if t["kind"] in accepted]


def merge(spec: Mapping[str, Any], overrides: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    """`spec` with `overrides` merged in; neither is modified. A dotted key (`train.lr`)
    names a nested one, mappings merge key by key, anything else (lists too) replaces.

    The API merges a comparison's variants by the same rule (gro_core.spec.apply_overrides);
    the dashboard has its own few lines because it imports no gro_core and shows the merged
    spec before submitting it.
    """
    if not isinstance(overrides, Mapping):
        raise ValueError(f"expected keys and values, got {type(overrides).__name__}")
    out = copy.deepcopy(dict(spec))
    for key, value in overrides.items():
        head, _, rest = str(key).partition(".")
        if rest:
            value = {rest: value}
        path = f"{where}{head}"
        current = out.get(head)
        if not isinstance(value, Mapping):
            out[head] = copy.deepcopy(value)
        elif current is None or isinstance(current, Mapping):
            out[head] = merge(current or {}, value, path + ".")
        else:
            inner = next(iter(value), "")
            raise ValueError(f"cannot set {path}.{inner}: {path} is {current!r}, not a mapping")
    return out
