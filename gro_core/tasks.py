"""Built-in tasks: deterministic data generators with their rule rewards.

A job names one with `data.task: builtin:<task>`. Demos and tests train on these without downloads,
so they are sized for a tiny character-level model (vocabulary: printable ASCII and newline):
prompts stay within 24 characters and answers within 8.

Three families, each in four shapes (the dataset kinds of docs/jobspec.md):

| task | kind | row |
|---|---|---|
| arithmetic, reverse, format | prompt | {prompt, answer} |
| *-preference | preference | {prompt, chosen, rejected, answer}; rejected is a corrupted answer |
| *-unpaired | unpaired | {prompt, completion, label, answer}; half correct, half corrupted |
| *-sft | sft | {prompt, completion, answer} |

`format` is a constraint task, not string manipulation: any word of the asked length with the
asked first and last letters is right, so its `answer` is one right example and its reward a
regular expression built from the prompt (`format_pattern`).

Every row keeps `answer`, so the family's rule reward can score any of them (e.g. evaluation of a
model trained on preference rows). Completions carry no end-of-sequence marker: trainers append the
tokenizer's eos.

Train and eval splits are disjoint for every seed: a stable hash of the prompt assigns each problem
to one split, and the generator keeps only problems of the requested split. Rows are drawn with
replacement, so a small problem space (1-digit arithmetic) repeats prompts within a split. The
variants of a family share their prompt sequence for the same (seed, split, difficulty), so SFT,
preference and online runs can be compared on the same problems.
"""

from __future__ import annotations

import functools
import hashlib
import random
import string
from collections.abc import Callable
from dataclasses import dataclass

from gro_core.task_rewards import (
    _REWARDS,
    char_match_reward,
    exact_match_reward,
    extract_answer,
    format_pattern,
    numeric_equal,
    numeric_match_reward,
    pattern_match_reward,
)

__all__ = [
    "MAX_ANSWER_CHARS",
    "MAX_PROMPT_CHARS",
    "SPLITS",
    "TASKS",
    "RewardFn",
    "TaskInfo",
    "char_match_reward",
    "exact_match_reward",
    "extract_answer",
    "format_pattern",
    "generate",
    "get_task",
    "numeric_equal",
    "numeric_match_reward",
    "pattern_match_reward",
    "reverse_copy_demonstrations",
    "sloppy_demonstrations",
    "task_reward",
]

MAX_PROMPT_CHARS = 24
MAX_ANSWER_CHARS = 8
SPLITS = ("train", "eval")
EVAL_BUCKETS = 10  # one problem in ten belongs to the eval split
_MAX_DRAWS_PER_ROW = 500  # a split that rejects this many draws in a row is empty: fail loudly

RewardFn = Callable[[list[str], list[dict]], list[float]]
"""(completions, rows) -> one reward per completion; rows carry the task's fields (`answer`)."""


# ---------------------------------------------------------------------------------------------
# Families: how to draw one problem and how to corrupt its answer
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Family:
    """A problem space: `draw(rng, difficulty) -> (prompt, answer)` and a wrong-answer maker."""

    name: str
    description: str
    difficulty: tuple[int, int, int]  # (default, min, max), chosen so lengths stay in limits
    draw: Callable[[random.Random, int], tuple[str, str]]
    corrupt: Callable[[random.Random, str, str], str]  # (rng, prompt, answer) -> wrong answer
    rewards: tuple[str, ...]  # names in _REWARDS; the first is the default


def _draw_arithmetic(rng: random.Random, digits: int) -> tuple[str, str]:
    """`a+b=` or `a-b=` with operands of up to `digits` digits; a >= b so answers are >= 0."""
    a, b = rng.randrange(10**digits), rng.randrange(10**digits)
    if rng.random() < 0.5:
        return f"{a}+{b}=", str(a + b)
    a, b = max(a, b), min(a, b)
    return f"{a}-{b}=", str(a - b)


def _corrupt_arithmetic(rng: random.Random, prompt: str, answer: str) -> str:
    """The answer off by 1 to 3; reflected upwards instead of going negative (an easy tell)."""
    delta = rng.choice((-3, -2, -1, 1, 2, 3))
    value = int(answer) + delta
    return str(value if value >= 0 else int(answer) - delta)


_LETTERS = string.ascii_lowercase


def _draw_reverse(rng: random.Random, max_len: int) -> tuple[str, str]:
    """`rev abcd=` with a word of 2..max_len lowercase letters; the answer is the word reversed."""
    word = "".join(rng.choice(_LETTERS) for _ in range(rng.randint(2, max_len)))
    return f"rev {word}=", word[::-1]


def _corrupt_reverse(rng: random.Random, prompt: str, answer: str) -> str:
    """A plausible mistake: the word unreversed, two neighbours swapped, or one letter changed."""
    word = answer[::-1]
    i = rng.randrange(len(answer) - 1)
    swapped = answer[:i] + answer[i + 1] + answer[i] + answer[i + 2 :]
    j = rng.randrange(len(answer))
    letter = rng.choice(_LETTERS.replace(answer[j], ""))
    changed = answer[:j] + letter + answer[j + 1 :]
    # `changed` always differs, so palindromes and repeated letters still get a wrong answer.
    return rng.choice([c for c in (word, swapped, changed) if c != answer])


def _draw_format(rng: random.Random, max_len: int) -> tuple[str, str]:
    """`fit n f_l=`: a word of n (2..max_len) letters from f to l; the answer is one such word."""
    length = rng.randint(2, max_len)
    first, last = rng.choice(_LETTERS), rng.choice(_LETTERS)
    middle = "".join(rng.choice(_LETTERS) for _ in range(length - 2))
    return f"fit {length} {first}_{last}=", first + middle + last


def _corrupt_format(rng: random.Random, prompt: str, answer: str) -> str:
    """A near miss: one letter too many or too few, or the wrong first or last letter."""
    first = rng.choice(_LETTERS.replace(answer[0], ""))
    last = rng.choice(_LETTERS.replace(answer[-1], ""))
    longer = answer[:-1] + rng.choice(_LETTERS) + answer[-1]
    options = [first + answer[1:], answer[:-1] + last]
    options.append(longer if len(answer) < MAX_ANSWER_CHARS else answer[0] + answer[2:])
    if len(answer) > 2:
        options.append(answer[0] + answer[2:])  # one letter short
    return rng.choice(options)


_FAMILIES = {
    "arithmetic": _Family(
        "arithmetic",
        "addition and subtraction of small non-negative integers, e.g. '12+7=' -> '19'",
        difficulty=(2, 1, 7),
        draw=_draw_arithmetic,
        corrupt=_corrupt_arithmetic,
        rewards=("exact_match", "numeric_match"),
    ),
    "reverse": _Family(
        "reverse",
        "reverse a lowercase word, e.g. 'rev abcd=' -> 'dcba'",
        difficulty=(4, 2, 8),
        draw=_draw_reverse,
        corrupt=_corrupt_reverse,
        rewards=("exact_match", "char_match"),
    ),
    "format": _Family(
        "format",
        "a word of the asked length and first and last letters, e.g. 'fit 4 b_k=' -> 'book'",
        difficulty=(5, 2, 8),
        draw=_draw_format,
        corrupt=_corrupt_format,
        rewards=("pattern_match",),
    ),
}


# ---------------------------------------------------------------------------------------------
# Variants: turn (prompt, answer) into a row of one dataset kind
# ---------------------------------------------------------------------------------------------


def _prompt_row(rng: random.Random, family: _Family, prompt: str, answer: str) -> dict:
    return {"prompt": prompt, "answer": answer}


def _preference_row(rng: random.Random, family: _Family, prompt: str, answer: str) -> dict:
    rejected = family.corrupt(rng, prompt, answer)
    return {"prompt": prompt, "chosen": answer, "rejected": rejected, "answer": answer}


def _unpaired_row(rng: random.Random, family: _Family, prompt: str, answer: str) -> dict:
    label = rng.random() < 0.5
    completion = answer if label else family.corrupt(rng, prompt, answer)
    return {"prompt": prompt, "completion": completion, "label": label, "answer": answer}


def _sft_row(rng: random.Random, family: _Family, prompt: str, answer: str) -> dict:
    return {"prompt": prompt, "completion": answer, "answer": answer}


_VARIANTS: dict[str, tuple[str, Callable[[random.Random, _Family, str, str], dict], str]] = {
    # kind: (task-name suffix, row builder, description)
    "prompt": ("", _prompt_row, "prompts with their answer, for online methods"),
    "preference": ("-preference", _preference_row, "chosen = the answer, rejected = a corruption"),
    "unpaired": ("-unpaired", _unpaired_row, "the answer (label true) or a corruption (false)"),
    "sft": ("-sft", _sft_row, "prompt and its answer as the completion"),
}


@dataclass(frozen=True)
class TaskInfo:
    """What `builtin:<name>` produces and how it is scored."""

    name: str
    """The task's name, without the `builtin:` prefix."""
    kind: str
    """Dataset kind of its rows: prompt, preference, unpaired or sft."""
    description: str
    """One line for `gro` listings and the API."""
    default_reward: str
    """The rule reward used when a job lists no rewards."""
    rewards: tuple[str, ...]
    """Rule rewards `task_reward` accepts for this task."""
    family: str
    """The problem space it draws from (arithmetic, reverse, format)."""


def _build_tasks() -> dict[str, TaskInfo]:
    tasks = {}
    for family in _FAMILIES.values():
        for kind, (suffix, _, what) in _VARIANTS.items():
            name = family.name + suffix
            description = f"{family.description}; {what}"
            tasks[name] = TaskInfo(
                name, kind, description, family.rewards[0], family.rewards, family.name
            )
    return tasks


TASKS: dict[str, TaskInfo] = _build_tasks()
"""Every built-in task by name: arithmetic, arithmetic-preference, ..., reverse-sft."""


def get_task(name: str) -> TaskInfo:
    """The task called `name` (`builtin:` prefix optional); ValueError listing the known ones."""
    bare = name.removeprefix("builtin:")
    if bare not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}")
    return TASKS[bare]


# ---------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------


def _split_of(prompt: str) -> str:
    """The split a problem belongs to, from a hash that is stable across processes and platforms."""
    bucket = int.from_bytes(hashlib.blake2b(prompt.encode(), digest_size=8).digest(), "big")
    return "eval" if bucket % EVAL_BUCKETS == 0 else "train"


def _check_difficulty(family: _Family, difficulty: int | None) -> int:
    default, low, high = family.difficulty
    if difficulty is None:
        return default
    if not low <= difficulty <= high:
        raise ValueError(
            f"difficulty for {family.name} must be in [{low}, {high}], got {difficulty}"
        )
    return difficulty


def generate(
    task: str, n: int, *, seed: int, split: str = "train", difficulty: int | None = None
) -> list[dict]:
    """`n` rows of `task`, the same for the same (task, seed, split, difficulty).

    `difficulty`: arithmetic, the operands' digit count (default 2, 1..7); reverse, the longest
    word (default 4, 2..8); format, the longest asked length (default 5, 2..8). Eval prompts
    never occur in the train split of any seed.
    """
    info = get_task(task)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    family = _FAMILIES[info.family]
    level = _check_difficulty(family, difficulty)
    # Problems come from a stream keyed by the family, so every variant sees the same prompts;
    # the variant's own choices (corruptions, labels) come from a second stream keyed by the task.
    problems = random.Random(f"{family.name}|{seed}|{split}|{level}")
    choices = random.Random(f"{info.name}|{seed}|{split}|{level}")
    build = _VARIANTS[info.kind][1]
    rows: list[dict] = []
    misses = 0
    while len(rows) < n:
        prompt, answer = family.draw(problems, level)
        if _split_of(prompt) != split:
            misses += 1
            if misses > _MAX_DRAWS_PER_ROW * (len(rows) + 1):
                raise RuntimeError(f"{task}: no problems fall in split {split!r}")
            continue
        rows.append(build(choices, family, prompt, answer))
    return rows


def reverse_copy_demonstrations(n: int, *, seed: int, reversed_share: float) -> list[dict]:
    """`n` reverse-sft rows from a sloppy demonstrator: a `reversed_share` of completions are the
    reversed word, the others the word copied unreversed (the plausible mistake).

    An SFT model trained on them is partly right, the starting point where online methods can
    show what they do: its greedy completion mostly copies, while sampling reverses often enough
    for rollouts to find rewarded answers. Prompts and `answer` are those of `reverse-sft`.
    """
    if not 0.0 <= reversed_share <= 1.0:
        raise ValueError(f"reversed_share must be in [0, 1], got {reversed_share}")
    choices = random.Random(f"reverse-copy|{seed}")
    rows = []
    for row in generate("reverse-sft", n, seed=seed):
        word = row["answer"][::-1]
        completion = row["answer"] if choices.random() < reversed_share else word
        rows.append({"prompt": row["prompt"], "completion": completion, "answer": row["answer"]})
    return rows


def sloppy_demonstrations(task: str, n: int, *, seed: int, right_share: float) -> list[dict]:
    """`n` rows of `task`'s sft variant from a sloppy demonstrator: a `right_share` of
    completions are the answer, the others the family's plausible mistake (its corruption).

    The warm-up recipe of `reverse_copy_demonstrations` for any family: SFT on them leaves a
    model partly right, so rollouts find rewarded answers and online methods have room to act.
    """
    if not 0.0 <= right_share <= 1.0:
        raise ValueError(f"right_share must be in [0, 1], got {right_share}")
    family = _FAMILIES[get_task(task).family]
    choices = random.Random(f"sloppy|{family.name}|{seed}")
    rows = []
    for row in generate(f"{family.name}-sft", n, seed=seed):
        right = choices.random() < right_share
        prompt, answer = row["prompt"], row["answer"]
        completion = answer if right else family.corrupt(choices, prompt, answer)
        rows.append({"prompt": row["prompt"], "completion": completion, "answer": row["answer"]})
    return rows


def task_reward(task: str, reward: str | None = None, *, eos: str | None = None) -> RewardFn:
    """The rule reward of `task`: its default (exact match) or one of `TASKS[task].rewards`.

    `eos`: a marker at which completions are cut before scoring, for decodes that keep it.
    """
    info = get_task(task)
    name = reward or info.default_reward
    if name not in info.rewards:
        raise ValueError(f"task {info.name} has rewards {', '.join(info.rewards)}; got {name!r}")
    return functools.partial(_REWARDS[name], eos=eos)
