"""Rewards: the job spec's `rewards` list turned into one scorer of rollouts.

    scorer = build_scorer(spec.rewards, allow_python=settings.allow_python_rewards,
                          task=spec.data.task, eos=tokenizer.eos_token)
    scorer.check_rows(prompt_rows)        # once, before training: a missing field fails here
    result = scorer(completions, rows)    # rows[i]: the dataset row of completion i's prompt
    result.total                          # one weighted sum per completion
    result.per_function                   # {"reward/exact_match": mean, ...}: logged as metrics

A reward function maps (completions, rows) to one value per completion, or None where it does not
apply (e.g. the row's answer is null). Each spec type has a builder in `REWARDS`; the type names
are those of gro_core.spec, which refuses unknown types and missing keys when the spec is read.
Completions are cut at `eos` once, before any function sees them.

Python rewards (`type: python`, `path: pkg.module:function`) run user code, so they are built only
when the operator allows it (the setting GRO_ALLOW_PYTHON_REWARDS), never because a spec asks.
"""

from __future__ import annotations

import importlib
import math
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from pydantic import TypeAdapter

from gro_core.data.encode import Sequence as TokenSequence
from gro_core.data.encode import collate, encode_pair
from gro_core.models import load_reward_model, load_tokenizer
from gro_core.reward_timeout import RewardTimeoutError, call_with_timeout, reward_timeout_s
from gro_core.spec import RewardSpec
from gro_core.spec.rewards import compile_pattern
from gro_core.tasks import extract_answer, numeric_equal, task_reward
from gro_core.text_rewards import string_check, text_similarity

__all__ = [
    "REWARDS",
    "RewardFn",
    "RewardResult",
    "RewardScorer",
    "RewardTimeoutError",
    "ScoredFunction",
    "build_scorer",
    "python_rewards_allowed",
    "reward_timeout_s",
]

RewardFn = Callable[[list[str], list[dict]], list[float | None]]
"""(completions, rows) -> one reward per completion, None where the function does not apply."""

ALLOW_PYTHON_SETTING = "GRO_ALLOW_PYTHON_REWARDS"


def python_rewards_allowed() -> bool:
    """The operator's switch (an environment setting, never the job spec) for python rewards."""
    return os.environ.get(ALLOW_PYTHON_SETTING, "").lower() in ("1", "true", "yes")


# ---------------------------------------------------------------------------------------------
# Rule rewards, one builder per spec type: builder(spec) -> RewardFn
# ---------------------------------------------------------------------------------------------


def _expected(row: dict, field: str) -> str | None:
    """The row's `field` as text; None when it is null (the row cannot be scored)."""
    value = row[field]
    return None if value is None else str(value)


def _exact_match(spec: Any) -> RewardFn:
    """1.0 where the answer (first non-blank line, stripped) equals str(row[field])."""

    def exact_match(completions: list[str], rows: list[dict]) -> list[float | None]:
        wants = [_expected(row, spec.field) for row in rows]
        return [
            None if want is None else float(extract_answer(c) == want)
            for c, want in zip(completions, wants, strict=True)
        ]

    return exact_match


def _numeric_match(spec: Any) -> RewardFn:
    """1.0 where the answer is a number within `tolerance` of row[field] ("19.0" matches 19)."""

    def numeric_match(completions: list[str], rows: list[dict]) -> list[float | None]:
        wants = [_expected(row, spec.field) for row in rows]
        return [
            None if want is None else float(numeric_equal(extract_answer(c), want, spec.tolerance))
            for c, want in zip(completions, wants, strict=True)
        ]

    return numeric_match


def _regex(spec: Any) -> RewardFn:
    """RE2 search anywhere in the completion; with `field`, the first group (the whole match
    when the pattern has none), stripped, must equal str(row[field])."""
    pattern = compile_pattern(spec.pattern)

    def found(completion: str, row: dict) -> float | None:
        match = pattern.search(completion)
        if spec.field is None:
            return float(match is not None)
        want = _expected(row, spec.field)
        if want is None:
            return None
        if match is None:
            return 0.0
        got = match.group(1) if pattern.groups else match.group(0)
        return float(got is not None and got.strip() == want)

    return lambda completions, rows: [found(c, r) for c, r in zip(completions, rows, strict=True)]


def _format(spec: Any) -> RewardFn:
    """1.0 where the stripped completion matches `pattern` whole (RE2 full match)."""
    pattern = compile_pattern(spec.pattern)
    return lambda completions, rows: [
        float(bool(pattern.fullmatch(c.strip()))) for c in completions
    ]


def _contains(spec: Any) -> RewardFn:
    """1.0 where `text` occurs in the completion."""
    return lambda completions, rows: [float(spec.text in c) for c in completions]


def _length_penalty(spec: Any) -> RewardFn:
    """−scale · |len − target_chars| / target_chars, in characters: 0 at the target."""
    target, scale = spec.target_chars, spec.scale
    return lambda completions, rows: [-scale * abs(len(c) - target) / target for c in completions]


# ---------------------------------------------------------------------------------------------
# Model and user-code rewards
# ---------------------------------------------------------------------------------------------


class _RewardModel:
    """Scores prompt + completion with a sequence classifier, loaded on the first call.

    row["prompt"] is encoded with the reward model's own tokenizer (its chat template for message
    lists) and eos is appended, exactly as `method: reward_model` encodes its training pairs, so a
    trained reward model is scored the way it was trained. Returns the (B,) scalar logits.
    """

    def __init__(self, name: str, batch_size: int) -> None:
        self.name, self.batch_size = name, batch_size
        self._model: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        self._model = load_reward_model(self.name).eval()
        self._tokenizer = load_tokenizer(self.name)

    def __call__(self, completions: list[str], rows: list[dict]) -> list[float | None]:
        if self._model is None:
            self._load()
        max_length = getattr(self._model.config, "max_position_embeddings", None) or 1 << 20
        sequences = [
            TokenSequence(*encode_pair(self._tokenizer, row["prompt"], c, max_length))
            for c, row in zip(completions, rows, strict=True)
        ]
        scores: list[float | None] = []
        for start in range(0, len(sequences), self.batch_size):
            batch = collate(
                sequences[start : start + self.batch_size], self._tokenizer.pad_token_id
            )
            batch = batch.to(self._model.device)
            with torch.no_grad():
                logits = self._model(
                    input_ids=batch.input_ids,
                    attention_mask=batch.attention_mask,
                    position_ids=batch.position_ids,
                ).logits  # (b, 1)
            scores += logits[:, 0].float().tolist()
        return scores


def _reward_model(spec: Any) -> RewardFn:
    return _RewardModel(spec.model, spec.batch_size)


def _python_source(source: str) -> RewardFn:
    """`grade(sample, item)` of the source, applied to each completion and its row."""
    namespace: dict[str, Any] = {}
    try:
        exec(compile(source, "<python reward>", "exec"), namespace)  # allowed by the operator
    except Exception as exc:
        raise ValueError(f"the source does not run: {type(exc).__name__}: {exc}") from exc
    grade = namespace.get("grade")
    if not callable(grade):
        raise ValueError("the source defines no function grade(sample, item)")
    return lambda completions, rows: [
        grade({"output_text": c}, row) for c, row in zip(completions, rows, strict=True)
    ]


def _python(spec: Any) -> RewardFn:
    """The user function at `pkg.module:function` (or of `source`); build_scorer decides
    whether it may run."""
    if spec.source is not None:
        return _python_source(spec.source)
    module_name, _, attribute = spec.path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name!r} for {spec.path}: {exc}") from exc
    fn = getattr(module, attribute, None)
    if not callable(fn):
        raise ValueError(f"{spec.path}: {module_name} has no function {attribute!r}")
    return fn


REWARDS: dict[str, Callable[[Any], RewardFn]] = {
    "exact_match": _exact_match,
    "numeric_match": _numeric_match,
    "regex": _regex,
    "format": _format,
    "contains": _contains,
    "length_penalty": _length_penalty,
    "string_check": string_check,
    "text_similarity": text_similarity,
    "reward_model": _reward_model,
    "python": _python,
}
"""Builder of each spec reward type: builder(spec variant) -> RewardFn."""


# ---------------------------------------------------------------------------------------------
# The combined scorer
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoredFunction:
    """One reward of the sum, with what it needs from the rows."""

    name: str
    """Metric key of its mean: reward/<type>, reward/<type>_<index> when a type repeats."""
    label: str
    """Where it came from, for errors: `rewards.0 (exact_match)`."""
    weight: float
    fn: RewardFn
    fields: tuple[str, ...] = ()
    """Row fields it reads; `check_rows` refuses rows without them."""


@dataclass(frozen=True)
class RewardResult:
    """Rewards of one batch of completions."""

    total: list[float]
    """Per completion: Σ weight · value, where None ("not applicable") adds 0."""
    per_function: dict[str, float]
    """Mean of each function's non-None values; a function with none is left out."""


def _checked(function: ScoredFunction, values: Sequence[Any], n: int) -> list[float | None]:
    """`values` as floats or None; refuses a wrong count or a value that is not a finite number."""
    if len(values) != n:
        raise ValueError(f"{function.label}: returned {len(values)} rewards for {n} completions")
    out: list[float | None] = []
    for value in values:
        number = None if value is None else float(value)
        if number is not None and not math.isfinite(number):
            raise ValueError(f"{function.label}: returned a non-finite reward {value!r}")
        out.append(number)
    return out


class RewardScorer:
    """The weighted sum of reward functions: `scorer(completions, rows) -> RewardResult`."""

    def __init__(
        self,
        functions: list[ScoredFunction],
        eos: str | None = None,
        timeout_s: float | None = None,
    ) -> None:
        if not functions:
            raise ValueError("no reward functions: list rewards in the spec or set data.task")
        self.functions, self.eos, self.timeout_s = functions, eos, timeout_s

    def check_rows(self, rows: list[dict]) -> None:
        """Refuse (ValueError naming the reward and the field) rows a function cannot score."""
        for function in self.functions:
            for field in function.fields:
                missing = next((i for i, row in enumerate(rows) if field not in row), None)
                if missing is None:
                    continue
                who = "rows have" if all(field not in r for r in rows) else f"row {missing} has"
                present = ", ".join(rows[missing]) or "none"
                raise ValueError(
                    f"{function.label}: {who} no field {field!r}; fields present: {present}"
                )

    def __call__(self, completions: list[str], rows: list[dict]) -> RewardResult:
        """Score completions[i] against rows[i]; totals treat None as 0 (adds nothing)."""
        if len(completions) != len(rows):
            raise ValueError(f"got {len(completions)} completions for {len(rows)} rows")
        if self.eos:
            completions = [c.split(self.eos, 1)[0] for c in completions]
        total = [0.0] * len(completions)
        per_function: dict[str, float] = {}
        for function in self.functions:
            returned = call_with_timeout(
                function.fn, completions, rows, timeout_s=self.timeout_s, label=function.label
            )
            values = _checked(function, returned, len(completions))
            total = [t + function.weight * (v or 0.0) for t, v in zip(total, values, strict=True)]
            present = [v for v in values if v is not None]
            if present:
                per_function[function.name] = sum(present) / len(present)
        return RewardResult(total, per_function)


_SPEC = TypeAdapter(RewardSpec)


def _fields(spec: Any) -> tuple[str, ...]:
    """Row fields a reward spec reads."""
    if spec.type == "reward_model":
        return ("prompt",)
    field = getattr(spec, "field", None)
    return (field,) if field else ()


def _scored(specs: list[Any], allow_python: bool) -> list[ScoredFunction]:
    counts = Counter(spec.type for spec in specs)
    functions = []
    for i, spec in enumerate(specs):
        label = f"rewards.{i} ({spec.type})"
        if spec.type not in REWARDS:
            raise ValueError(f"{label}: unknown reward type; one of: {', '.join(REWARDS)}")
        if spec.type == "python" and not allow_python:
            raise ValueError(
                f"{label}: python rewards run arbitrary code and are disabled; the operator must "
                f"enable them with the setting {ALLOW_PYTHON_SETTING}=1"
            )
        name = f"reward/{spec.type}" if counts[spec.type] == 1 else f"reward/{spec.type}_{i}"
        try:
            fn = REWARDS[spec.type](spec)
        except ValueError as exc:
            raise ValueError(f"{label}: {exc}") from exc
        functions.append(ScoredFunction(name, label, spec.weight, fn, _fields(spec)))
    return functions


def build_scorer(
    reward_specs: Sequence[Any],
    *,
    allow_python: bool = False,
    task: str | None = None,
    eos: str | None = None,
    timeout_s: float | None = None,
) -> RewardScorer:
    """A scorer for `reward_specs` (JobSpec.rewards variants, or dicts of the same keys).

    With no specs, `task` (builtin:<task>) gives its rule reward, weight 1, logged as
    reward/task. `allow_python` is the operator's setting, never the spec's: python rewards are
    refused without it. `eos` cuts every completion before scoring. `timeout_s` bounds each
    function's call (RewardTimeoutError past it); None: no bound.
    """
    specs = [_SPEC.validate_python(s) if isinstance(s, Mapping) else s for s in reward_specs]
    if specs or task is None:
        return RewardScorer(_scored(specs, allow_python), eos, timeout_s)
    default = ScoredFunction("reward/task", f"task ({task})", 1.0, task_reward(task), ("answer",))
    return RewardScorer([default], eos, timeout_s)
