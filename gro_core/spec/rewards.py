"""Rewards: a list of weighted reward functions in the job spec, one variant per `type`.

gro_core.rewards implements them; here they are only described and validated.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args

import re2
from pydantic import BaseModel, Field, field_validator, model_validator

from gro_core.spec.base import Section

Weight = Annotated[float, Field(description="Multiplier of this reward in the weighted sum.")]
_PYTHON_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # the error reaches the user in the ValueError, not on stderr


def compile_pattern(pattern: str) -> Any:
    """`pattern` compiled by RE2, whose matching takes time linear in the text: a pattern from a
    spec runs on the workers, and a backtracking engine (Python's `re`) can take forever on
    patterns like `(a|aa)*b`. RE2 has no backreferences or lookaround; such patterns are
    refused (ValueError) when the spec is read, not when the job runs."""
    try:
        return re2.compile(pattern, options=_RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        reason = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
        raise ValueError(
            f"invalid regular expression for RE2 (no backreferences or lookaround): {reason}"
        ) from exc


def _compiled(pattern: str) -> str:
    """`pattern` if RE2 compiles it; the compile error otherwise."""
    compile_pattern(pattern)
    return pattern


class ExactMatchReward(Section):
    """1.0 when the completion's answer (first non-blank line, stripped) equals the row's `field`;
    not applicable (None) where that field is null."""

    type: Literal["exact_match"]
    """Selects this reward."""
    field: str = Field(min_length=1)
    """The row field holding the expected answer."""
    weight: Weight = 1.0


class NumericMatchReward(Section):
    """1.0 when the completion's answer is a number within `tolerance` of the row's `field`;
    not applicable (None) where that field is null."""

    type: Literal["numeric_match"]
    """Selects this reward."""
    field: str = Field(min_length=1)
    """The row field holding the expected number."""
    tolerance: float = Field(1e-6, ge=0.0)
    """Largest absolute difference that still counts as equal."""
    weight: Weight = 1.0


class RegexReward(Section):
    """1.0 when `pattern` is found in the completion (RE2 search); with `field`, its first group
    (or the whole match when it has none), stripped, must also equal the row's `field`."""

    type: Literal["regex"]
    """Selects this reward."""
    pattern: str = Field(min_length=1)
    """A regular expression (RE2 syntax: Python's without backreferences or lookaround)
    searched for in the completion."""
    field: str | None = Field(None, min_length=1)
    """Optional row field the captured text must equal; null: finding the pattern is enough."""
    weight: Weight = 1.0

    _check_pattern = field_validator("pattern")(_compiled)


class FormatReward(Section):
    """1.0 when the whole completion, stripped, matches `pattern` (RE2 full match)."""

    type: Literal["format"]
    """Selects this reward."""
    pattern: str = Field(min_length=1)
    """A regular expression (RE2 syntax) the whole completion must match."""
    weight: Weight = 1.0

    _check_pattern = field_validator("pattern")(_compiled)


class ContainsReward(Section):
    """1.0 when the completion contains `text`."""

    type: Literal["contains"]
    """Selects this reward."""
    text: str = Field(min_length=1)
    """The text to look for (case-sensitive)."""
    weight: Weight = 1.0


class LengthPenaltyReward(Section):
    """−scale · |len(completion) − target_chars| / target_chars: 0 at the target length."""

    type: Literal["length_penalty"]
    """Selects this reward."""
    target_chars: int = Field(ge=1)
    """The completion length, in characters, that costs nothing."""
    scale: float = Field(1.0, gt=0.0)
    """Size of the penalty at twice the target length (or at length 0)."""
    weight: Weight = 1.0


class _Reference(Section):
    """The text a completion is compared with: a row's `field`, or a fixed `text`."""

    field: str | None = Field(None, min_length=1)
    """The row field holding the reference (not applicable where it is null)."""
    text: str | None = None
    """A fixed reference, the same for every row."""

    @model_validator(mode="after")
    def _one_reference(self) -> _Reference:
        if (self.field is None) == (self.text is None):
            raise ValueError("give exactly one of field (a row field) or text (a fixed string)")
        return self


class StringCheckReward(_Reference):
    """1.0 when the completion (stripped) and the reference pass `operation`: eq equal, ne
    not equal, like the completion contains the reference, ilike the same ignoring case
    (OpenAI's string_check grader)."""

    type: Literal["string_check"]
    """Selects this reward."""
    operation: Literal["eq", "ne", "like", "ilike"] = "eq"
    """How the two strings are compared."""
    weight: Weight = 1.0


class TextSimilarityReward(_Reference):
    """The similarity, in [0, 1], of the completion (stripped) and the reference: fuzzy_match
    is difflib's ratio 2·M/T of matching characters (OpenAI's text_similarity grader)."""

    type: Literal["text_similarity"]
    """Selects this reward."""
    metric: Literal["fuzzy_match"] = "fuzzy_match"
    """The similarity measure."""
    weight: Weight = 1.0


class RewardModelReward(Section):
    """The score of a reward model (e.g. one trained with method: reward_model) on the row's
    prompt and the completion, encoded as that method encodes its training pairs."""

    type: Literal["reward_model"]
    """Selects this reward."""
    model: str = Field(min_length=1)
    """A sequence classifier with one output: a local directory, a model id, or (API) a job
    or checkpoint id."""
    batch_size: int = Field(8, ge=1)
    """Completions scored per forward pass."""
    weight: Weight = 1.0


class PythonReward(Section):
    """A user function `package.module:function(completions, rows) -> list[float | None]`
    (None: not applicable to that completion), or `source` defining
    `grade(sample, item) -> float` as OpenAI's python grader does (`sample["output_text"]` is
    the completion, `item` the row).

    The spec accepts it; it runs only where the operator allows python rewards
    (`check_rewards_allowed`).
    """

    type: Literal["python"]
    """Selects this reward."""
    path: str | None = Field(None, pattern=_PYTHON_PATH.pattern)
    """`package.module:function`, importable where the worker runs."""
    source: str | None = Field(None, min_length=1)
    """Python source defining `grade(sample, item)`, instead of a path."""
    weight: Weight = 1.0

    @model_validator(mode="after")
    def _one_function(self) -> PythonReward:
        if (self.path is None) == (self.source is None):
            raise ValueError("give exactly one of path (package.module:function) or source")
        return self


RewardSpec = Annotated[
    ExactMatchReward
    | NumericMatchReward
    | RegexReward
    | FormatReward
    | ContainsReward
    | LengthPenaltyReward
    | StringCheckReward
    | TextSimilarityReward
    | RewardModelReward
    | PythonReward,
    Field(discriminator="type"),
]


def reward_type(variant: type[BaseModel]) -> str:
    """The `type` tag of one reward variant, read off its Literal annotation."""
    return get_args(variant.model_fields["type"].annotation)[0]


REWARD_TYPES: tuple[str, ...] = tuple(reward_type(v) for v in get_args(get_args(RewardSpec)[0]))
