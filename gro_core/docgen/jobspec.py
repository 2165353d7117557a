"""The generated parts of docs/jobspec.md: every key of `JobSpec` (its type, default, bounds and
attribute docstring), the reward types, the methods, the dataset kinds and the built-in tasks.

Nothing here imports torch: the page describes what the API validates without it.
"""

from __future__ import annotations

import json
import re
import types
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from gro_core.data.kinds import KINDS, describe_kind
from gro_core.docgen.markdown import code, paragraphs, prose, table, value
from gro_core.methods import METHODS
from gro_core.spec import JobSpec, RewardSpec, Section, load_spec
from gro_core.spec.hub import HubDataset
from gro_core.spec.integrations import INTEGRATION_VARIANTS, IntegrationSpec, integration_type
from gro_core.spec.rewards import reward_type
from gro_core.tasks import TASKS

_SCALARS = {int: "integer", float: "number", str: "string", bool: "boolean", Any: "any"}
_EXAMPLE = re.compile(r"^## A complete example\n.*?^```yaml\n(.*?)^```", re.DOTALL | re.MULTILINE)


def reward_variants() -> tuple[type[BaseModel], ...]:
    """The models of the `rewards` union, in the order the spec lists them."""
    return get_args(get_args(RewardSpec)[0])


# The discriminated unions of the spec, by their member union, and where each is documented.
_UNION_LINKS = {
    get_args(RewardSpec)[0]: "[reward](#rewards)",
    get_args(IntegrationSpec)[0]: "[tracker](#integrations)",
}


def _section_of(annotation: Any) -> type[Section] | None:
    """The Section a field holds (`X` or `X | None`), else None."""
    union = get_origin(annotation) in (Union, types.UnionType)
    members = get_args(annotation) if union else (annotation,)
    candidates = [a for a in members if a is not type(None)]
    only = candidates[0] if len(candidates) == 1 else None
    return only if isinstance(only, type) and issubclass(only, Section) else None


def type_name(annotation: Any) -> str:
    """How a type reads: `integer`, `string | null`, `list of string`, a link to a section."""
    origin, args = get_origin(annotation), get_args(annotation)
    if annotation is type(None):
        return "null"
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    if origin is Annotated:
        extra = [m for m in args[1:] if isinstance(m, FieldInfo)]
        if any(m.discriminator for m in extra):
            return _UNION_LINKS[args[0]]
        shown = type_name(args[0])
        limits = [b for m in extra for b in bounds(m.metadata)]
        return f"{shown} ({', '.join(limits)})" if limits else shown
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is Literal:
        return "string"
    if origin is list:
        return f"list of {type_name(args[0])}"
    if origin is dict:
        return "mapping"
    if annotation is HubDataset:
        return "[Hugging Face dataset](#hugging-face-datasets)"
    if isinstance(annotation, type) and issubclass(annotation, Section):
        return "section"
    raise ValueError(f"docgen: no name for the type {annotation!r}")


def bounds(metadata: list[Any]) -> list[str]:
    """The constraints pydantic keeps for a field: ≥ 1, < 1, non-empty, a pattern."""
    said = []
    for m in metadata:
        for attr, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            if getattr(m, attr, None) is not None:
                said.append(f"{sign} {getattr(m, attr)}")
        min_length = getattr(m, "min_length", None)
        if min_length is not None:
            said.append("non-empty" if min_length == 1 else f"at least {min_length} long")
        if getattr(m, "pattern", None):
            said.append(f"matches {code(m.pattern)}")
    return said


def _choices(annotation: Any) -> list[str]:
    """The values a Literal field (possibly optional) accepts."""
    if get_origin(annotation) is Literal:
        return [str(a) for a in get_args(annotation)]
    return []


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    default = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
    return "its defaults" if isinstance(default, BaseModel) else value(default)


def _description(model: type[BaseModel], key: str, field: FieldInfo) -> str:
    if not field.description:
        raise ValueError(f"{model.__name__}.{key} has no docstring: document it")
    return prose(field.description)


def _row(model: type[BaseModel], key: str, field: FieldInfo) -> list[str]:
    section = _section_of(field.annotation)
    shown = f"[section](#{key})" if section else type_name(field.annotation)
    limits = bounds(field.metadata)
    choices = _choices(field.annotation)
    if len(choices) == 1:
        limits.append(f"must be {code(choices[0])}")
    elif choices:
        limits.append("one of " + ", ".join(code(c) for c in choices))
    description = _description(model, key, field)
    return [code(key), shown, _default(field), "; ".join(limits) or "—", description]


def key_table(model: type[BaseModel]) -> str:
    rows = [_row(model, key, field) for key, field in model.model_fields.items()]
    return table(["key", "type", "default", "allowed", "what"], rows)


def sections() -> Iterator[tuple[str, type[Section]]]:
    """(key, model) of every nested section of JobSpec."""
    for key, field in JobSpec.model_fields.items():
        section = _section_of(field.annotation)
        if section is not None:
            yield key, section


def section_tables() -> str:
    parts = []
    for key, model in sections():
        doc = prose(" ".join(paragraphs(model.__doc__)))
        parts.append(f"### {key}\n\n{doc}\n\n{key_table(model)}")
    return "\n\n".join(parts)


def reward_tables() -> str:
    parts = []
    for model in reward_variants():
        doc = prose(" ".join(paragraphs(model.__doc__)))
        parts.append(f"### {reward_type(model)}\n\n{doc}\n\n{key_table(model)}")
    return "\n\n".join(parts)


def integration_tables() -> str:
    parts = []
    for model in INTEGRATION_VARIANTS:
        doc = prose(" ".join(paragraphs(model.__doc__)))
        parts.append(f"### {integration_type(model)}\n\n{doc}\n\n{key_table(model)}")
    return "\n\n".join(parts)


def method_table() -> str:
    rows = []
    for name, m in METHODS.items():
        link = f"[{name}](objective.md#{name})" if m.preset else code(name)
        args = ", ".join(f"{a.name}={json.dumps(a.default)}" for a in m.args) or "—"
        flags = [w for w, on in (("online", m.online), ("offline", m.offline)) if on]
        rows.append([link, ", ".join(sorted(m.kinds)), " and ".join(flags), m.trains_with, args])
    return table(["method", "data kinds", "runs", "objective", "method_args (defaults)"], rows)


def kind_table() -> str:
    rows = []
    for kind in KINDS:
        methods = [n for n, m in METHODS.items() if kind in m.kinds]
        rows.append([code(kind), describe_kind(kind), ", ".join(methods)])
    return table(["kind", "a row has", "methods that train on it"], rows)


def task_table() -> str:
    rows = [
        [code(f"builtin:{t.name}"), t.kind, prose(t.description), t.default_reward]
        for t in TASKS.values()
    ]
    return table(["data.task", "kind", "rows", "reward when none is listed"], rows)


def documented_example(page: str) -> str:
    """The YAML of the page's "A complete example" section (the template's or the page's)."""
    match = _EXAMPLE.search(page)
    if match is None:
        raise ValueError("the job spec page has no ```yaml block under '## A complete example'")
    return match.group(1)


def check_example(template: str) -> None:
    """The documented example must load as written."""
    load_spec(documented_example(template))


def parts() -> dict[str, Callable[[], str]]:
    """The placeholders of docs/templates/jobspec.md and what fills each."""
    return {
        "top_level_keys": lambda: key_table(JobSpec),
        "sections": section_tables,
        "rewards": reward_tables,
        "integrations": integration_tables,
        "methods": method_table,
        "kinds": kind_table,
        "hub_keys": lambda: key_table(HubDataset),
        "tasks": task_table,
    }
