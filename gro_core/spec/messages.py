"""pydantic's validation errors as [{"path", "message"}]: dotted keys and messages that say how
to fix them (an unknown key gets its closest allowed name)."""

from __future__ import annotations

from collections.abc import Mapping
from difflib import get_close_matches
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from gro_core.spec.base import SpecError
from gro_core.spec.hub import HUB_TAG, HubDataset
from gro_core.spec.job import JobSpec
from gro_core.spec.rewards import REWARD_TYPES, RewardSpec, reward_type

_REWARD_MODELS: dict[str, type[BaseModel]] = {
    reward_type(v): v for v in get_args(get_args(RewardSpec)[0])
}


_SOURCE_TAGS = (HUB_TAG, "name")  # data.train / data.eval: a name, or a HubDataset


def _path_parts(loc: tuple[int | str, ...]) -> list[str]:
    """Location parts without the tags a discriminated union inserts (rewards.0.regex.pattern)."""
    return [
        str(part)
        for i, part in enumerate(loc)
        if not (i > 0 and isinstance(loc[i - 1], int) and part in _REWARD_MODELS)
        and not (i > 1 and loc[i - 2] == "data" and part in _SOURCE_TAGS)
    ]


def _section(root: type[BaseModel], parts: list[str]) -> type[BaseModel] | None:
    """The section model at dotted `parts` of a `root` document (`lora` in a JobSpec: LoraSpec)."""
    model = root
    if parts[:1] == ["data"] and parts[1:2] in (["train"], ["eval"]):
        model, parts = HubDataset, parts[2:]  # the only mapping data.train / data.eval take
    for part in parts:
        field = model.model_fields.get(part)
        if field is None:
            return None
        annotation = field.annotation
        inner = [a for a in (annotation, *get_args(annotation)) if _is_model(a)]
        if not inner:
            return None
        model = inner[0]
    return model


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _unknown_key_message(loc: tuple[int | str, ...], root: type[BaseModel]) -> str:
    """ "unknown key 'lrr'; did you mean 'lr'?", or the keys allowed where it was found."""
    key = str(loc[-1])
    parent = loc[-2] if len(loc) > 1 else ""
    model = _REWARD_MODELS.get(str(parent)) or _section(root, _path_parts(loc[:-1]))
    if model is None:
        return f"unknown key {key!r}"
    allowed = list(model.model_fields)
    close = get_close_matches(key, allowed, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"allowed keys: {', '.join(allowed)}"
    return f"unknown key {key!r}; {hint}"


def _message(error: Mapping[str, Any], root: type[BaseModel]) -> str:
    kind, ctx = error["type"], error.get("ctx", {})
    if kind == "extra_forbidden":
        return _unknown_key_message(error["loc"], root)
    if kind == "model_type" and not error["loc"]:
        document = "a job spec" if root is JobSpec else root.__name__
        return f"{document} is a mapping of keys: " + ", ".join(root.model_fields)
    if kind == "union_tag_invalid":
        return f"unknown reward type {ctx['tag']!r}; one of: {', '.join(REWARD_TYPES)}"
    if kind == "union_tag_not_found":
        return f"missing reward type; one of: {', '.join(REWARD_TYPES)}"
    return str(error["msg"]).removeprefix("Value error, ")


def format_validation_error(
    exc: ValidationError | SpecError, root: type[BaseModel] = JobSpec
) -> list[dict[str, str]]:
    """[{"path": "train.lr", "message": ...}], one per problem; path "" is the whole document.

    `root` is the document validated (a JobSpec, or e.g. an EvaluationSpec): an unknown key's
    message lists the keys allowed where it was found."""
    if isinstance(exc, SpecError):
        return [{"path": exc.path, "message": exc.message}]
    report = []
    for error in exc.errors(include_url=False):
        parts = _path_parts(error["loc"])
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            parts.append("type")  # the location of a bad tag is the item; the culprit its type
        report.append({"path": ".".join(parts), "message": _message(error, root)})
    return report
