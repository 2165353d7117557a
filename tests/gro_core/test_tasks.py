"""Built-in tasks: determinism, disjoint splits, row shapes, rule rewards."""

from __future__ import annotations

import pytest

from gro_core.tasks import (
    MAX_ANSWER_CHARS,
    MAX_PROMPT_CHARS,
    TASKS,
    extract_answer,
    generate,
    get_task,
    numeric_equal,
    reverse_copy_demonstrations,
    sloppy_demonstrations,
    task_reward,
)

# Printable ASCII plus newline: the tiny character-level model's whole vocabulary.
ALLOWED_CHARS = {chr(c) for c in range(32, 127)} | {"\n"}
REQUIRED_FIELDS = {
    "prompt": {"prompt", "answer"},
    "preference": {"prompt", "chosen", "rejected", "answer"},
    "unpaired": {"prompt", "completion", "label", "answer"},
    "sft": {"prompt", "completion", "answer"},
}


def _fits(prompt: str, word: str) -> bool:
    """Whether `word` meets a format prompt `fit n f_l=`, checked without regular expressions."""
    length, ends = prompt[4:-1].split(" ")
    first, last = ends.split("_")
    return len(word) == int(length) and word[0] == first and word[-1] == last and word.isalpha()


def _solve(prompt: str) -> str:
    """The right answer, computed independently of the generator."""
    if prompt.startswith("rev "):
        return prompt[4:-1][::-1]
    body = prompt.removesuffix("=")
    op = "+" if "+" in body else "-"
    a, b = (int(x) for x in body.split(op))
    return str(a + b if op == "+" else a - b)


def test_registry_has_every_family_in_every_kind():
    names = {
        f"{family}{suffix}"
        for family in ("arithmetic", "reverse", "format")
        for suffix in ("", "-preference", "-unpaired", "-sft")
    }
    assert names <= set(TASKS)
    assert TASKS["arithmetic-unpaired"].kind == "unpaired"
    assert TASKS["reverse"].kind == "prompt"


@pytest.mark.parametrize("task", sorted(TASKS))
def test_same_seed_same_rows_other_seed_other_rows(task):
    assert generate(task, 50, seed=3) == generate(task, 50, seed=3)
    assert generate(task, 50, seed=3) != generate(task, 50, seed=4)
    assert generate(task, 50, seed=3, split="eval") == generate(task, 50, seed=3, split="eval")


@pytest.mark.parametrize("task", ["arithmetic", "reverse"])
def test_train_and_eval_prompts_are_disjoint(task):
    # 1-digit arithmetic and 2-letter words are small spaces: the strongest test of the partition.
    for difficulty in (None, 1 if task == "arithmetic" else 2):
        train = {r["prompt"] for r in generate(task, 2000, seed=0, difficulty=difficulty)}
        evals = generate(task, 300, seed=0, split="eval", difficulty=difficulty)
        assert evals and not train & {r["prompt"] for r in evals}


def test_eval_prompts_never_appear_in_train_of_other_seeds():
    evals = {r["prompt"] for r in generate("arithmetic", 200, seed=0, split="eval")}
    train = {r["prompt"] for r in generate("arithmetic-sft", 2000, seed=1)}
    assert not evals & train


def test_variants_share_the_prompt_sequence():
    prompts = [r["prompt"] for r in generate("reverse", 20, seed=5)]
    assert [r["prompt"] for r in generate("reverse-preference", 20, seed=5)] == prompts


@pytest.mark.parametrize("task", sorted(TASKS))
@pytest.mark.parametrize("split", ["train", "eval"])
def test_rows_have_their_kind_fields_and_correct_answers(task, split):
    for row in generate(task, 200, seed=1, split=split):
        assert set(row) == REQUIRED_FIELDS[TASKS[task].kind]
        if TASKS[task].family == "format":  # many right answers: `answer` is one of them
            assert _fits(row["prompt"], row["answer"])
            if "rejected" in row or row.get("label") is False:
                assert not _fits(row["prompt"], row.get("rejected", row.get("completion")))
        else:
            assert row["answer"] == _solve(row["prompt"])
        if "chosen" in row:
            assert row["chosen"] == row["answer"] != row["rejected"]
        if "label" in row:
            assert (row["completion"] == row["answer"]) is row["label"]
        if TASKS[task].kind == "sft":
            assert row["completion"] == row["answer"]


def test_unpaired_rows_mix_desirable_and_undesirable():
    labels = [r["label"] for r in generate("arithmetic-unpaired", 200, seed=0)]
    assert 60 < sum(labels) < 140


@pytest.mark.parametrize("task", sorted(TASKS))
@pytest.mark.parametrize("difficulty", ["min", "max"])
def test_lengths_and_characters_within_limits(task, difficulty):
    low, high = {"arithmetic": (1, 7), "reverse": (2, 8), "format": (2, 8)}[TASKS[task].family]
    level = low if difficulty == "min" else high
    for row in generate(task, 300, seed=2, difficulty=level):
        assert len(row["prompt"]) <= MAX_PROMPT_CHARS
        for key in ("answer", "chosen", "rejected", "completion"):
            if key in row:
                assert 0 < len(row[key]) <= MAX_ANSWER_CHARS
        for value in row.values():
            if isinstance(value, str):
                assert set(value) <= ALLOWED_CHARS


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match=r"arithmetic.*reverse"):
        generate("sorting", 3, seed=0)
    with pytest.raises(ValueError, match="split"):
        generate("arithmetic", 3, seed=0, split="test")
    with pytest.raises(ValueError, match=r"\[1, 7\]"):
        generate("arithmetic", 3, seed=0, difficulty=9)
    with pytest.raises(ValueError, match="known tasks"):
        task_reward("sorting")
    with pytest.raises(ValueError, match="char_match"):
        task_reward("reverse", "numeric_match")


def test_get_task_accepts_the_builtin_prefix():
    assert get_task("builtin:reverse-sft") is TASKS["reverse-sft"]


def test_extract_answer_takes_the_first_stripped_line():
    assert extract_answer("  19  \n20 junk") == "19"
    assert extract_answer("\n19\n") == "19"
    assert extract_answer("19</s>junk", eos="</s>") == "19"
    assert extract_answer("") == ""


def test_numeric_equal_within_tolerance():
    assert numeric_equal("19", "19.0")
    assert numeric_equal("19.0000001", 19, tol=1e-6)
    assert not numeric_equal("19.01", "19", tol=1e-3)
    assert numeric_equal("19.01", "19", tol=0.1)
    for junk in ("", "nineteen", "1_9", "nan", "inf", "19x"):
        assert not numeric_equal(junk, "19")


def test_exact_match_reward_scores_right_and_wrong():
    rows = [{"answer": "19"}] * 5
    completions = ["19", " 19 \n", "19\n7+7=14", "18", "119"]
    assert task_reward("arithmetic")(completions, rows) == [1.0, 1.0, 1.0, 0.0, 0.0]


def test_numeric_match_variant_accepts_equal_numbers():
    reward = task_reward("arithmetic", "numeric_match")
    rows = [{"answer": "19"}] * 3
    assert reward(["19.0\nxx", "019", "19.5"], rows) == [1.0, 1.0, 0.0]


def test_reverse_rewards_exact_and_partial_credit():
    rows = [{"answer": "dcba"}] * 4
    completions = ["dcba \njunk", "dcbx", "dc", "dcbaa"]
    assert task_reward("reverse")(completions, rows) == [1.0, 0.0, 0.0, 0.0]
    partial = task_reward("reverse", "char_match")(completions, rows)
    assert partial == pytest.approx([1.0, 0.75, 0.5, 0.8])


def test_rewards_score_every_variant_by_its_answer():
    rows = generate("reverse-preference", 10, seed=0)
    reward = task_reward("reverse-preference")
    assert reward([r["chosen"] for r in rows], rows) == [1.0] * 10
    assert reward([r["rejected"] for r in rows], rows) == [0.0] * 10


def test_reward_refuses_mismatched_lengths():
    with pytest.raises(ValueError, match="2 completions for 1 rows"):
        task_reward("arithmetic")(["1", "2"], [{"answer": "1"}])


def test_sloppy_reverse_demonstrations_copy_the_rest_of_the_words():
    rows = reverse_copy_demonstrations(400, seed=0, reversed_share=0.4)
    assert rows == reverse_copy_demonstrations(400, seed=0, reversed_share=0.4)
    sft = generate("reverse-sft", 400, seed=0)
    assert [r["prompt"] for r in rows] == [r["prompt"] for r in sft]
    right = [r["completion"] == r["answer"] == _solve(r["prompt"]) for r in rows]
    assert 0.33 < sum(right) / len(rows) < 0.47
    wrong = [r for r, ok in zip(rows, right, strict=True) if not ok]
    assert all(r["completion"] == r["prompt"][4:-1] for r in wrong)
    with pytest.raises(ValueError, match="reversed_share"):
        reverse_copy_demonstrations(4, seed=0, reversed_share=1.5)


def test_format_reward_accepts_any_word_that_fits_and_nothing_else():
    rows = [{"prompt": "fit 4 b_k=", "answer": "book"}] * 6
    got = task_reward("format")(["book", "bark\njunk", "bok", "cook", "boom", "b12k"], rows)
    assert got == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="not a format prompt"):
        task_reward("format")(["x"], [{"prompt": "rev ab=", "answer": "ba"}])


@pytest.mark.parametrize("task", ["arithmetic", "reverse", "format"])
def test_sloppy_demonstrations_are_right_at_their_share(task):
    rows = sloppy_demonstrations(task, 600, seed=0, right_share=0.3)
    assert rows == sloppy_demonstrations(task, 600, seed=0, right_share=0.3)
    prompts = [r["prompt"] for r in generate(f"{task}-sft", 600, seed=0)]
    assert [r["prompt"] for r in rows] == prompts
    scores = task_reward(task)([r["completion"] for r in rows], rows)
    assert 0.24 < sum(scores) / len(rows) < 0.36  # the wrong ones are all wrong
    with pytest.raises(ValueError, match="right_share"):
        sloppy_demonstrations(task, 4, seed=0, right_share=-0.1)
