"""The built-in tasks' rule rewards: (completions, rows) -> one reward per completion.

Apart from gro_core.tasks (which re-exports them) so each module stays one responsibility:
tasks draws problems, this scores answers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

# ---------------------------------------------------------------------------------------------
# Small pure helpers
# ---------------------------------------------------------------------------------------------


def extract_answer(completion: str, eos: str | None = None) -> str:
    """The answer a completion gives: text before `eos` (if given), first non-blank line, stripped.

    Leading whitespace is dropped first, so `"\\n 19 \\njunk"` gives `"19"`.
    """
    if eos:
        completion = completion.split(eos, 1)[0]
    return completion.lstrip().split("\n", 1)[0].strip()


# Plain decimal numbers only: float() would also accept "1_9", "nan" and "inf".
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _parse_number(value: str | float) -> float | None:
    """`value` as a float, or None when it is not a plain finite decimal number."""
    if not (isinstance(value, int | float) or _NUMBER.fullmatch(value.strip())):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def numeric_equal(a: str | float, b: str | float, tol: float = 1e-6) -> bool:
    """Whether `a` and `b` are numbers at most `tol` apart; False when either is not a number."""
    x, y = _parse_number(a), _parse_number(b)
    return x is not None and y is not None and abs(x - y) <= tol


# ---------------------------------------------------------------------------------------------
# Rule rewards: (completions, rows) -> rewards, comparing each completion with row["answer"]
# ---------------------------------------------------------------------------------------------


def _answers(completions: list[str], rows: list[dict], eos: str | None) -> list[tuple[str, str]]:
    """Pairs (extracted answer, expected answer); refuses mismatched lengths."""
    if len(completions) != len(rows):
        raise ValueError(f"got {len(completions)} completions for {len(rows)} rows")
    return [
        (extract_answer(c, eos), str(row["answer"]))
        for c, row in zip(completions, rows, strict=True)
    ]


def exact_match_reward(
    completions: list[str], rows: list[dict], *, eos: str | None = None
) -> list[float]:
    """1.0 where the completion's answer equals `answer` exactly, else 0.0."""
    return [float(got == want) for got, want in _answers(completions, rows, eos)]


def numeric_match_reward(
    completions: list[str], rows: list[dict], *, tol: float = 1e-6, eos: str | None = None
) -> list[float]:
    """1.0 where the completion's answer is a number within `tol` of `answer` ("19.0" counts)."""
    return [float(numeric_equal(got, want, tol)) for got, want in _answers(completions, rows, eos)]


def char_match_reward(
    completions: list[str], rows: list[dict], *, eos: str | None = None
) -> list[float]:
    """Partial credit: characters right at their position / the longer of answer and completion.

    Dividing by the longer length makes both missing and extra characters cost, so only the exact
    answer scores 1.0; an empty answer against an empty target also scores 1.0.
    """
    rewards = []
    for got, want in _answers(completions, rows, eos):
        longest = max(len(got), len(want))
        # Positions past the shorter string count as wrong, through `longest`.
        right = sum(g == w for g, w in zip(got, want, strict=False))
        rewards.append(right / longest if longest else 1.0)
    return rewards


# `fit 4 b_k=`: a 4-letter lowercase word starting with b and ending with k.
_FORMAT_PROMPT = re.compile(r"fit (\d) ([a-z])_([a-z])=")


def format_pattern(prompt: str) -> re.Pattern[str]:
    """The regular expression a `format` prompt asks for: `fit 4 b_k=` -> `b[a-z]{2}k`."""
    match = _FORMAT_PROMPT.fullmatch(prompt)
    if match is None:
        raise ValueError(f"not a format prompt (fit <length> <first>_<last>=): {prompt!r}")
    length, first, last = int(match[1]), match[2], match[3]
    return re.compile(f"{first}[a-z]{{{length - 2}}}{last}")


def pattern_match_reward(
    completions: list[str], rows: list[dict], *, eos: str | None = None
) -> list[float]:
    """1.0 where the completion's answer fully matches the pattern its row's prompt asks for
    (`format_pattern`); any such word counts, not only `answer`."""
    if len(completions) != len(rows):
        raise ValueError(f"got {len(completions)} completions for {len(rows)} rows")
    return [
        float(format_pattern(row["prompt"]).fullmatch(extract_answer(c, eos)) is not None)
        for c, row in zip(completions, rows, strict=True)
    ]


_REWARDS: dict[str, Callable[..., list[float]]] = {
    "exact_match": exact_match_reward,
    "pattern_match": pattern_match_reward,
    "numeric_match": numeric_match_reward,
    "char_match": char_match_reward,
}
