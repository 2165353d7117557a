"""DAPO's sampling options for any online preset (rollout.dynamic_sampling, overlong_buffer,
mask_truncated): which groups carry no signal, the soft overlong penalty, and which
completions were cut at the length limit. Pure functions of scored sequences."""

from __future__ import annotations

from collections.abc import Sequence as Seq
from dataclasses import replace
from typing import Protocol

from gro_core.data.encode import Sequence


class Group(Protocol):
    sequences: list[Sequence]


def is_flat(group: Group) -> bool:
    """A group of two or more completions whose rewards are all equal: every advantage that
    compares within the group is 0, so it adds nothing but cost to the update."""
    rewards = {s.reward for s in group.sequences}
    return len(group.sequences) > 1 and len(rewards) == 1


def overlong_penalty(length: int, max_new_tokens: int, buffer: int, penalty: float) -> float:
    """DAPO's soft overlong punishment: 0 up to max_new_tokens − buffer tokens, then falling
    linearly to −penalty at max_new_tokens."""
    start = max_new_tokens - buffer
    if buffer == 0 or length <= start:
        return 0.0
    return -penalty * min(length - start, buffer) / buffer


def is_truncated(seq: Sequence, max_new_tokens: int, eos_id: int | None) -> bool:
    """Cut at the length limit: max_new_tokens tokens and no end-of-sequence token last."""
    ids = seq.completion_ids
    return len(ids) >= max_new_tokens and (not ids or ids[-1] != eos_id)


def renumbered(groups: Seq[Group]) -> None:
    """Give each group's sequences the group's position as their group id (after groups from
    several scoring rounds were merged)."""
    for p, group in enumerate(groups):
        group.sequences = [replace(s, group=p) for s in group.sequences]
