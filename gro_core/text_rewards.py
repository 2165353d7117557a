"""Rewards that compare a completion with a reference text (a row field or a fixed string):
the reward types OpenAI's string_check and text_similarity graders map onto."""

from __future__ import annotations

from collections.abc import Callable
from difflib import SequenceMatcher
from typing import Any

RewardFn = Callable[[list[str], list[dict]], list[float | None]]


def _reference(spec: Any, row: dict) -> str | None:
    return (
        spec.text
        if spec.text is not None
        else (None if row[spec.field] is None else str(row[spec.field]))
    )


_STRING_CHECKS: dict[str, Callable[[str, str], bool]] = {
    "eq": lambda got, want: got == want,
    "ne": lambda got, want: got != want,
    "like": lambda got, want: want in got,
    "ilike": lambda got, want: want.lower() in got.lower(),
}


def string_check(spec: Any) -> RewardFn:
    """1.0 where operation(completion.strip(), reference) holds."""
    check = _STRING_CHECKS[spec.operation]

    def string_check(completions: list[str], rows: list[dict]) -> list[float | None]:
        wants = [_reference(spec, row) for row in rows]
        return [
            None if want is None else float(check(c.strip(), want))
            for c, want in zip(completions, wants, strict=True)
        ]

    return string_check


def text_similarity(spec: Any) -> RewardFn:
    """difflib's ratio of completion.strip() and the reference (the one metric: fuzzy_match)."""

    def similarity(completions: list[str], rows: list[dict]) -> list[float | None]:
        wants = [_reference(spec, row) for row in rows]
        return [
            None if want is None else SequenceMatcher(None, c.strip(), want).ratio()
            for c, want in zip(completions, wants, strict=True)
        ]

    return similarity
