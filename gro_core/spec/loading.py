"""Reading a job spec from YAML, JSON or a dict, and deep-merging overrides into one."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from gro_core.spec.base import SpecError
from gro_core.spec.job import JobSpec

_SPEC_SUFFIXES = (".yaml", ".yml", ".json")


def _read_text(source: str | Path) -> str:
    """The YAML text of `source`: a file's contents when it names one, else `source` itself."""
    if isinstance(source, Path):
        return source.read_text()
    looks_like_path = "\n" not in source and (
        source.endswith(_SPEC_SUFFIXES) or Path(source).is_file()
    )
    return Path(source).read_text() if looks_like_path else source


def load_spec(source: str | Path | Mapping[str, Any]) -> JobSpec:
    """A validated JobSpec from a YAML/JSON file, YAML text, or a dict (the API's JSON body).

    Raises pydantic's ValidationError for bad keys and values (`format_validation_error` turns
    it into paths and messages), SpecError for text that is not YAML, OSError for a missing file.
    """
    if isinstance(source, Mapping):
        return JobSpec.model_validate(dict(source))
    text = _read_text(source)
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SpecError("", f"not valid YAML{where}: {getattr(exc, 'problem', exc)}") from exc
    return JobSpec.model_validate(document)


def _expand_dotted(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """{"train.seed": 3} -> {"train": {"seed": 3}}, recursively, merging keys that meet."""
    expanded: dict[str, Any] = {}
    for key, value in overrides.items():
        if isinstance(value, Mapping):
            value = _expand_dotted(value)
        *parents, leaf = str(key).split(".")
        for parent in reversed(parents):
            value = {leaf: value}
            leaf = parent
        _merge_into(expanded, {leaf: value}, "")
    return expanded


def _merge_into(base: dict[str, Any], update: Mapping[str, Any], path: str) -> None:
    """Deep-merge `update` into `base` (a private copy): mappings merge, anything else replaces."""
    for key, value in update.items():
        where = f"{path}.{key}" if path else key
        current = base.get(key)
        if isinstance(value, Mapping) and isinstance(current, dict):
            _merge_into(current, value, where)
        elif isinstance(value, Mapping) and current is not None:
            inner = f"{where}.{next(iter(value), '')}"
            raise ValueError(f"cannot set {inner}: {where} is {current!r}, not a mapping")
        else:
            base[key] = copy.deepcopy(value)


def apply_overrides(spec_dict: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`spec_dict` with `overrides` deep-merged in; neither input is modified.

    Keys may be dotted paths: {"train.seed": 3, "method_args": {"beta": 0.2}} sets train.seed
    and method_args.beta and keeps every other key. Lists and scalars are replaced whole.
    """
    merged = copy.deepcopy(dict(spec_dict))
    _merge_into(merged, _expand_dotted(overrides), "")
    return merged
