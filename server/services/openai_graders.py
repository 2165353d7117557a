"""OpenAI's graders as gro rewards (the reward registry, gro_core/spec/rewards.py).

    string_check     -> string_check   (eq, ne, like, ilike)
    text_similarity  -> text_similarity (fuzzy_match)
    score_model      -> reward_model   (the grader's model must be a reward model gro can load)
    python           -> python with `source` (only where the operator allows python rewards)
    multi            -> its graders, weighted by the linear `calculate_output`

A grader's `input` must be the completion (`{{sample.output_text}}`) and its `reference` a
row field (`{{item.answer}}`) or a fixed string. What cannot be mapped is refused with the
grader's key path as `param`.
"""

from __future__ import annotations

import re
from typing import Any

from server.errors import InvalidRequestError

_SAMPLE = re.compile(r"\{\{\s*sample\.output_text\s*\}\}")
_ITEM = re.compile(r"\{\{\s*item\.([A-Za-z_][\w]*)\s*\}\}")
_TERM = re.compile(r"\s*([+-]?)\s*(?:(\d+(?:\.\d*)?|\.\d+)\s*\*\s*)?([A-Za-z_]\w*)\s*")


def refuse(param: str, message: str, code: str = "invalid_grader") -> InvalidRequestError:
    return InvalidRequestError(code, f"{param}: {message}", field=param)


def _need(grader: dict[str, Any], key: str, param: str) -> Any:
    if grader.get(key) is None:
        raise refuse(f"{param}.{key}", "missing")
    return grader[key]


def _input(grader: dict[str, Any], param: str) -> None:
    value = _need(grader, "input", param)
    if not isinstance(value, str) or not _SAMPLE.fullmatch(value.strip()):
        raise refuse(
            f"{param}.input",
            "gro grades the completion itself: use '{{sample.output_text}}'",
        )


def _reference(grader: dict[str, Any], param: str) -> dict[str, str]:
    """`{"field": name}` for '{{item.name}}', `{"text": value}` for a fixed string."""
    value = _need(grader, "reference", param)
    if not isinstance(value, str):
        raise refuse(f"{param}.reference", "must be a string")
    match = _ITEM.fullmatch(value.strip())
    if match:
        return {"field": match.group(1)}
    if "{{" in value:
        raise refuse(
            f"{param}.reference",
            "only a whole '{{item.<field>}}' or a fixed string can be a reference",
        )
    return {"text": value}


def _string_check(grader: dict[str, Any], param: str, weight: float) -> list[dict[str, Any]]:
    _input(grader, param)
    operation = _need(grader, "operation", param)
    if operation not in ("eq", "ne", "like", "ilike"):
        raise refuse(f"{param}.operation", f"one of eq, ne, like, ilike; got {operation!r}")
    reference = _reference(grader, param)
    return [{"type": "string_check", "operation": operation, "weight": weight, **reference}]


def _text_similarity(grader: dict[str, Any], param: str, weight: float) -> list[dict[str, Any]]:
    _input(grader, param)
    metric = _need(grader, "evaluation_metric", param)
    if metric != "fuzzy_match":
        raise refuse(
            f"{param}.evaluation_metric",
            f"gro computes fuzzy_match only; {metric!r} is not available",
            "unsupported_grader",
        )
    reference = _reference(grader, param)
    return [{"type": "text_similarity", "metric": metric, "weight": weight, **reference}]


def _score_model(grader: dict[str, Any], param: str, weight: float) -> list[dict[str, Any]]:
    """A reward model scores the row's prompt and the completion; the grader's own prompt
    (`input`) is an instruction for a chat model that a reward model does not read."""
    model = _need(grader, "model", param)
    return [{"type": "reward_model", "model": model, "weight": weight}]


def _python(grader: dict[str, Any], param: str, weight: float) -> list[dict[str, Any]]:
    source = _need(grader, "source", param)
    return [{"type": "python", "source": source, "weight": weight}]


def linear_weights(expression: str, names: list[str], param: str) -> dict[str, float]:
    """The coefficient of each name in a linear `calculate_output` ("0.7 * a + 0.3 * b")."""
    weights: dict[str, float] = {}
    position, text = 0, expression.strip()
    while position < len(text):
        match = _TERM.match(text, position)
        if match is None or match.end() == position:
            raise refuse(
                f"{param}.calculate_output",
                "gro sums graders: use a weighted sum like '0.5 * a + 0.5 * b'",
                "unsupported_grader",
            )
        sign, number, name = match.groups()
        if name not in names:
            raise refuse(f"{param}.calculate_output", f"{name!r} is not one of the graders {names}")
        value = float(number) if number else 1.0
        weights[name] = weights.get(name, 0.0) + (-value if sign == "-" else value)
        position = match.end()
    if not weights:
        raise refuse(f"{param}.calculate_output", "is empty")
    return weights


def _multi(grader: dict[str, Any], param: str, weight: float) -> list[dict[str, Any]]:
    graders = _need(grader, "graders", param)
    if not isinstance(graders, dict) or not graders:
        raise refuse(f"{param}.graders", "must map names to graders")
    weights = linear_weights(_need(grader, "calculate_output", param), list(graders), param)
    rewards = []
    for name, coefficient in weights.items():
        rewards += rewards_of(graders[name], f"{param}.graders.{name}", weight * coefficient)
    return rewards


_MAPPERS = {
    "string_check": _string_check,
    "text_similarity": _text_similarity,
    "score_model": _score_model,
    "python": _python,
    "multi": _multi,
}


def rewards_of(grader: Any, param: str, weight: float = 1.0) -> list[dict[str, Any]]:
    """The gro rewards (spec dicts) a grader maps onto; InvalidRequestError at `param`."""
    if not isinstance(grader, dict):
        raise refuse(param, "must be a grader object")
    kind = grader.get("type")
    mapper = _MAPPERS.get(kind) if isinstance(kind, str) else None
    if mapper is None:
        known = ", ".join(_MAPPERS)
        raise refuse(
            f"{param}.type", f"{kind!r} cannot be mapped; one of {known}", "unsupported_grader"
        )
    return mapper(grader, param, weight)
