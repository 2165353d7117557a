"""Rewards: each spec type on hand-made completions, weighted sums, None, errors up front."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from gro_core.models import load_reward_model, load_tokenizer
from gro_core.rewards import REWARDS, RewardTimeoutError, build_scorer
from gro_core.spec import REWARD_TYPES, format_validation_error, load_spec


def score(reward: dict, completions: list[str], rows: list[dict]) -> list[float]:
    """Totals of a scorer with one reward of weight 1."""
    return build_scorer([reward])(completions, rows).total


def shout_reward(completions: list[str], rows: list[dict]) -> list[float | None]:
    """A user reward for the python type: 1 for all caps, None for completions without letters."""
    return [float(c.isupper()) if any(ch.isalpha() for ch in c) else None for c in completions]


def one_reward(completions: list[str], rows: list[dict]) -> list[float]:
    """A broken user reward: one value whatever the batch."""
    return [1.0]


def test_registry_covers_every_spec_type():
    assert set(REWARDS) == set(REWARD_TYPES)


def test_exact_match_reads_the_first_line_of_the_completion():
    rows = [{"answer": "19"}, {"answer": 19}, {"answer": "19"}, {"answer": "19"}]
    completions = [" 19 \njunk after the answer", "19", "19 junk", "\n19"]
    assert score({"type": "exact_match", "field": "answer"}, completions, rows) == [1, 1, 0, 1]


def test_exact_match_cuts_at_eos_before_scoring():
    scorer = build_scorer([{"type": "exact_match", "field": "answer"}], eos="<eos>")
    assert scorer(["19<eos>21", "1<eos>9"], [{"answer": "19"}] * 2).total == [1.0, 0.0]


def test_numeric_match_within_tolerance_only():
    reward = {"type": "numeric_match", "field": "answer", "tolerance": 0.05}
    completions = ["19.0", "19.04\nmore", "19.06", "nineteen", "19"]
    rows = [{"answer": "19"}] * 4 + [{"answer": 19.02}]
    assert score(reward, completions, rows) == [1, 1, 0, 0, 1]


def test_regex_without_field_searches_anywhere():
    reward = {"type": "regex", "pattern": r"\d+"}
    assert score(reward, ["the answer is 7", "no digits"], [{}, {}]) == [1, 0]


def test_regex_with_field_compares_the_first_group():
    reward = {"type": "regex", "pattern": r"answer: *(\d+)", "field": "answer"}
    completions = ["so answer: 42.", "answer: 41", "42"]
    assert score(reward, completions, [{"answer": 42}] * 3) == [1, 0, 0]


def test_regex_with_field_and_no_group_compares_the_whole_match():
    reward = {"type": "regex", "pattern": r"\d+", "field": "answer"}
    assert score(reward, ["x 42 y", "x 4 y"], [{"answer": "42"}] * 2) == [1, 0]


def test_format_must_match_the_whole_stripped_completion():
    reward = {"type": "format", "pattern": r"<a>\d+</a>"}
    completions = ["<a>12</a>", "  <a>12</a>\n", "<a>12</a> and more", "<a>x</a>"]
    assert score(reward, completions, [{}] * 4) == [1, 1, 0, 0]


def test_contains_is_a_substring_test():
    reward = {"type": "contains", "text": "because"}
    assert score(reward, ["it is because", "since", "Because"], [{}] * 3) == [1, 0, 0]


def test_length_penalty_is_relative_distance_to_the_target():
    reward = {"type": "length_penalty", "target_chars": 10, "scale": 2.0}
    totals = score(reward, ["x" * 10, "x" * 5, "x" * 20], [{}] * 3)
    assert totals == pytest.approx([0.0, -1.0, -2.0])


def test_weights_combine_into_the_total_and_means_are_per_function():
    scorer = build_scorer(
        [
            {"type": "exact_match", "field": "answer", "weight": 2.0},
            {"type": "contains", "text": "!", "weight": -0.5},
        ]
    )
    result = scorer(["7!", "7", "8!"], [{"answer": "7!"}, {"answer": "7"}, {"answer": "7"}])
    assert result.total == pytest.approx([2.0 - 0.5, 2.0, -0.5])
    assert result.per_function == pytest.approx(
        {"reward/exact_match": 2 / 3, "reward/contains": 2 / 3}
    )


def test_repeated_types_get_indexed_metric_names():
    scorer = build_scorer([{"type": "contains", "text": "a"}, {"type": "contains", "text": "b"}])
    result = scorer(["ab", "a"], [{}, {}])
    assert result.per_function == {"reward/contains_0": 1.0, "reward/contains_1": 0.5}
    assert result.total == [2.0, 1.0]


def test_none_adds_nothing_to_the_total_and_is_left_out_of_the_mean():
    scorer = build_scorer(
        [
            {"type": "exact_match", "field": "answer"},
            {"type": "contains", "text": "1", "weight": 0.5},
        ]
    )
    result = scorer(["1", "1", "2"], [{"answer": None}, {"answer": "1"}, {"answer": "1"}])
    assert result.total == [0.5, 1.5, 0.0]
    assert result.per_function["reward/exact_match"] == 0.5  # mean of [1, 0], None excluded
    assert result.per_function["reward/contains"] == pytest.approx(2 / 3)


def test_a_function_that_never_applies_logs_no_mean():
    result = build_scorer([{"type": "exact_match", "field": "answer"}])(["1"], [{"answer": None}])
    assert result.total == [0.0]
    assert result.per_function == {}


def test_missing_field_is_refused_before_scoring_with_reward_and_field():
    scorer = build_scorer(
        [{"type": "contains", "text": "x"}, {"type": "exact_match", "field": "answer"}]
    )
    rows = [{"prompt": "1+1=", "solution": "2"}] * 2
    with pytest.raises(ValueError) as excinfo:
        scorer.check_rows(rows)
    assert str(excinfo.value) == (
        "rewards.1 (exact_match): rows have no field 'answer'; fields present: prompt, solution"
    )


def test_missing_field_in_one_row_names_that_row():
    scorer = build_scorer([{"type": "numeric_match", "field": "answer"}])
    with pytest.raises(ValueError, match=r"rewards\.0 \(numeric_match\): row 1 has no field"):
        scorer.check_rows([{"answer": 1}, {"prompt": "p"}])
    scorer.check_rows([{"answer": 1}, {"answer": None}])  # present (null) is fine


def test_unknown_reward_type_is_refused_by_the_spec():
    doc = {
        "model": "builtin:tiny-llama",
        "method": "grpo",
        "data": {"task": "builtin:arithmetic"},
        "rewards": [{"type": "exact_matsch", "field": "answer"}],
    }
    with pytest.raises(ValidationError) as excinfo:
        load_spec(doc)
    [problem] = format_validation_error(excinfo.value)
    assert problem["path"] == "rewards.0.type"
    assert "exact_matsch" in problem["message"]


def test_spec_rewards_build_a_scorer():
    doc = {
        "model": "builtin:tiny-llama",
        "method": "grpo",
        "data": {"task": "builtin:arithmetic"},
        "rewards": [{"type": "exact_match", "field": "answer", "weight": 3.0}],
    }
    scorer = build_scorer(load_spec(doc).rewards)
    assert scorer(["4"], [{"answer": "4"}]).total == [3.0]


def test_python_reward_is_refused_without_the_operator_setting():
    reward = {"type": "python", "path": "tests.gro_core.test_rewards:shout_reward"}
    with pytest.raises(ValueError, match="GRO_ALLOW_PYTHON_REWARDS"):
        build_scorer([reward])


def test_python_reward_runs_when_allowed():
    reward = {"type": "python", "path": "tests.gro_core.test_rewards:shout_reward", "weight": 2}
    result = build_scorer([reward], allow_python=True)(["YES", "no", "42"], [{}] * 3)
    assert result.total == [2.0, 0.0, 0.0]
    assert result.per_function == {"reward/python": 0.5}


def test_python_reward_with_a_bad_path_fails_at_build_time():
    missing = {"type": "python", "path": "tests.gro_core.test_rewards:no_such_reward"}
    with pytest.raises(ValueError, match=r"rewards\.0 \(python\).*no_such_reward"):
        build_scorer([missing], allow_python=True)


def test_a_reward_returning_the_wrong_count_is_refused():
    reward = {"type": "python", "path": "tests.gro_core.test_rewards:one_reward"}
    scorer = build_scorer([reward], allow_python=True)
    with pytest.raises(ValueError, match=r"rewards\.0 \(python\): returned 1 rewards for 2"):
        scorer(["A", "B"], [{}, {}])


def test_task_rule_reward_is_the_default_without_rewards():
    scorer = build_scorer([], task="builtin:arithmetic", eos="<eos>")
    result = scorer(["19<eos>", "18\n19"], [{"answer": "19"}] * 2)
    assert result.total == [1.0, 0.0]
    assert result.per_function == {"reward/task": 0.5}
    with pytest.raises(ValueError, match=r"task \(builtin:arithmetic\).*'answer'"):
        scorer.check_rows([{"prompt": "1+1="}])


def test_no_rewards_and_no_task_is_refused():
    with pytest.raises(ValueError, match="no reward functions"):
        build_scorer([])


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private GRO_CACHE_DIR, so builtin models are built under tmp_path."""
    monkeypatch.setenv("GRO_CACHE_DIR", str(tmp_path))
    return tmp_path


COMPLETIONS = ["19", "a much longer completion", "7", ""]
PROMPT_ROWS = [{"prompt": "12+7="}, {"prompt": "rev ab="}, {"prompt": "3+4="}, {"prompt": "1+1="}]


def test_reward_model_gives_one_float_per_completion_and_repeats_it(cache: Path):
    reward = {"type": "reward_model", "model": "builtin:tiny-llama", "batch_size": 3}
    scorer = build_scorer([reward])
    first = scorer(COMPLETIONS, PROMPT_ROWS)
    assert len(first.total) == 4 and all(isinstance(t, float) for t in first.total)
    assert len(set(first.total)) == 4  # the score depends on the text
    assert scorer(COMPLETIONS, PROMPT_ROWS).total == first.total
    assert first.per_function["reward/reward_model"] == pytest.approx(sum(first.total) / 4)
    with pytest.raises(ValueError, match=r"rewards\.0 \(reward_model\).*'prompt'"):
        scorer.check_rows([{"answer": "1"}])


def test_reward_model_scores_prompt_completion_eos_whatever_the_batching(cache: Path):
    # A saved checkpoint, like a trained reward model: its score head is fixed from here on.
    model = load_reward_model("builtin:tiny-llama")
    tokenizer = load_tokenizer("builtin:tiny-llama")
    model.save_pretrained(cache / "rm")
    tokenizer.save_pretrained(cache / "rm")
    reward = {"type": "reward_model", "model": str(cache / "rm")}
    batched = build_scorer([{**reward, "batch_size": 3}])(COMPLETIONS, PROMPT_ROWS).total
    single = build_scorer([{**reward, "batch_size": 1}])(COMPLETIONS, PROMPT_ROWS).total
    # Reference: each text alone, unpadded: <bos> prompt completion <eos>.
    expected = []
    for completion, row in zip(COMPLETIONS, PROMPT_ROWS, strict=True):
        ids = tokenizer(row["prompt"] + completion)["input_ids"] + [tokenizer.eos_token_id]
        with torch.no_grad():
            expected.append(float(model(input_ids=torch.tensor([ids])).logits[0, 0]))
    assert batched == pytest.approx(expected, abs=1e-5)
    assert single == pytest.approx(expected, abs=1e-5)


def test_string_check_operations_compare_the_stripped_completion():
    rows = [{"answer": "Paris"}] * 4 + [{"answer": None}]
    completions = [" Paris\n", "paris", "It is Paris.", "PARIS!", "Paris"]
    by_op = {
        op: score({"type": "string_check", "field": "answer", "operation": op}, completions, rows)
        for op in ("eq", "ne", "like", "ilike")
    }
    assert by_op == {
        "eq": [1, 0, 0, 0, 0],
        "ne": [0, 1, 1, 1, 0],
        "like": [1, 0, 1, 0, 0],
        "ilike": [1, 1, 1, 1, 0],
    }


def test_string_check_with_a_fixed_text_and_one_reference_only():
    assert score({"type": "string_check", "text": "ok"}, ["ok", "no"], [{}, {}]) == [1, 0]
    with pytest.raises(ValidationError, match="exactly one of field"):
        build_scorer([{"type": "string_check", "text": "ok", "field": "answer"}])


def test_text_similarity_is_the_fuzzy_ratio():
    reward = {"type": "text_similarity", "field": "answer"}
    totals = score(reward, ["abcd", "abxx", "zzzz"], [{"answer": "abcd"}] * 3)
    assert totals == [1.0, 0.5, 0.0]


def test_python_source_defines_grade_of_sample_and_item():
    source = "def grade(sample, item):\n    return float(sample['output_text'] == item['answer'])\n"
    scorer = build_scorer([{"type": "python", "source": source}], allow_python=True)
    assert scorer(["4", "5"], [{"answer": "4"}] * 2).total == [1.0, 0.0]
    with pytest.raises(ValueError, match="disabled"):
        build_scorer([{"type": "python", "source": source}])
    with pytest.raises(ValueError, match="defines no function grade"):
        build_scorer([{"type": "python", "source": "x = 1"}], allow_python=True)


def sleepy_reward(completions: list[str], rows: list[dict]) -> list[float]:
    """A user reward that never answers in time (a slow remote judge, a stuck loop)."""
    time.sleep(60)
    return [0.0] * len(completions)


# Python's backtracking `re` takes exponential time on this pattern against a run of a's with no
# b; RE2 takes linear time. The child process keeps a hang from hanging the test run itself.
_REDOS = """
from gro_core.rewards import build_scorer
completion = "a" * 100_000
for kind in ("regex", "format"):
    scorer = build_scorer([{"type": kind, "pattern": "(a|aa)*b"}])
    assert scorer([completion], [{}]).total == [0.0]
print("scored")
"""


def test_regex_and_format_rewards_match_in_linear_time():
    done = subprocess.run(
        [sys.executable, "-c", _REDOS],
        capture_output=True,
        text=True,
        timeout=120,  # minutes of backtracking for `re`; milliseconds for RE2
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 0 and "scored" in done.stdout, done.stderr


@pytest.mark.parametrize("pattern", [r"(a)\1", r"(?=a)b", r"(?<!x)y"])
def test_a_pattern_re2_cannot_run_is_refused_at_submit(pattern):
    doc = {
        "model": "builtin:tiny-llama",
        "method": "grpo",
        "data": {"task": "builtin:arithmetic"},
        "rewards": [{"type": "regex", "pattern": pattern}],
    }
    with pytest.raises(ValidationError) as excinfo:
        load_spec(doc)
    [problem] = format_validation_error(excinfo.value)
    assert problem["path"] == "rewards.0.pattern" and "RE2" in problem["message"]


def test_a_reward_past_its_time_bound_fails_with_reward_timeout():
    reward = {"type": "python", "path": "tests.gro_core.test_rewards:sleepy_reward"}
    scorer = build_scorer([reward], allow_python=True, timeout_s=0.2)
    with pytest.raises(RewardTimeoutError, match=r"rewards\.0 \(python\): took longer than 0.2s"):
        scorer(["A"], [{}])
    assert RewardTimeoutError.code == "reward_timeout"


def test_a_reward_error_inside_the_bound_reaches_the_caller_unchanged():
    reward = {"type": "python", "path": "tests.gro_core.test_rewards:one_reward"}
    scorer = build_scorer([reward], allow_python=True, timeout_s=30)
    with pytest.raises(ValueError, match="returned 1 rewards for 2"):
        scorer(["A", "B"], [{}, {}])
