"""DAPO's sampling options (rollout.dynamic_sampling, overlong_buffer, mask_truncated): the
rules, their spec checks, and what one collected step holds with them."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from gro_core.data.encode import Sequence
from gro_core.spec import load_spec
from gro_core.trainers.dapo_sampling import is_flat, is_truncated, overlong_penalty
from gro_core.trainers.loop import Trainer
from gro_core.trainers.rollout_groups import RolloutGroup
from tests.gro_core.test_trainers import spec_for


def _group(*rewards: float) -> RolloutGroup:
    return RolloutGroup([Sequence((1,), (2,), r) for r in rewards], ["x"] * len(rewards), {})


def test_a_group_is_flat_when_all_its_rewards_are_equal() -> None:
    assert is_flat(_group(0.5, 0.5, 0.5))
    assert not is_flat(_group(0.5, 0.5, 0.0))
    assert not is_flat(_group(1.0))  # a lone completion: nothing to compare, nothing dropped


def test_overlong_penalty_falls_linearly_over_the_buffer() -> None:
    # max_new_tokens 10, buffer 4: free up to 6 tokens, then −0.25 per token to −1 at 10.
    assert [overlong_penalty(n, 10, 4, 1.0) for n in (3, 6, 7, 8, 10)] == [0, 0, -0.25, -0.5, -1]
    assert overlong_penalty(9, 10, 4, 2.0) == -1.5
    assert overlong_penalty(10, 10, 0, 1.0) == 0.0  # off


def test_truncated_means_cut_at_the_limit_without_eos() -> None:
    assert is_truncated(Sequence((1,), (5, 6, 7)), 3, eos_id=2)
    assert not is_truncated(Sequence((1,), (5, 6, 2)), 3, eos_id=2)  # ended just in time
    assert not is_truncated(Sequence((1,), (5, 6)), 3, eos_id=2)


@pytest.mark.parametrize(
    ("method", "rollout", "key", "message"),
    [
        ("dapo", {"overlong_buffer": 6}, "overlong_buffer", "must be below max_new_tokens"),
        ("dpo", {"dynamic_sampling": True}, "dynamic_sampling", "trains offline only"),
        ("dapo", {"dynamic_sampling": True, "num_generations": 1}, "dynamic_sampling", "a group"),
        ("dapo", {"max_resample_rounds": 0}, "max_resample_rounds", "greater than or equal"),
    ],
)
def test_bad_sampling_options_name_their_key(method, rollout, key, message) -> None:
    task = "builtin:arithmetic-preference" if method == "dpo" else "builtin:reverse"
    doc = spec_for(method, task)
    doc["rollout"] |= rollout
    with pytest.raises(ValidationError) as caught:
        load_spec(doc)
    (error,) = [e for e in caught.value.errors() if key in e["loc"]]
    assert message in error["msg"]


def _collect(tmp_path: Path, **rollout):
    doc = spec_for("dapo", "builtin:reverse", batch_size=4)
    doc["rollout"] |= rollout
    trainer = Trainer(load_spec(doc), tmp_path, [], resume=False)
    return trainer._collect(1)


@pytest.mark.slow
def test_dynamic_sampling_drops_flat_groups_and_bounds_the_extra_rounds(tmp_path: Path) -> None:
    """An untrained model never reverses a word: every group scores 0 under the task's exact
    match, so all rounds run and the batch is filled back with flat groups."""
    collected = _collect(tmp_path, dynamic_sampling=True, max_resample_rounds=2)
    m = collected.metrics
    assert m["sampling/flat_groups"] == 1.0
    assert m["sampling/extra_rounds"] == 2 and m["sampling/extra_prompts"] == 8
    assert m["sampling/flat_groups_kept"] == 4
    assert len(collected.items) == 4  # the batch keeps its size
    ids = [{s.group for s in g.sequences} for g in collected.items]
    assert ids == [{0}, {1}, {2}, {3}]  # renumbered after merging rounds


@pytest.mark.slow
def test_dynamic_sampling_keeps_groups_that_carry_signal(tmp_path: Path) -> None:
    doc = spec_for("dapo", "builtin:reverse", batch_size=4)
    doc["rollout"] |= {"dynamic_sampling": True}
    doc["rewards"] = [{"type": "length_penalty", "target_chars": 3, "scale": 1.0}]
    collected = Trainer(load_spec(doc), tmp_path, [], resume=False)._collect(1)
    assert not any(is_flat(g) for g in collected.items)
    assert collected.metrics["sampling/flat_groups_kept"] == 0


@pytest.mark.slow
def test_overlong_buffer_lowers_the_rewards_of_long_completions(tmp_path: Path) -> None:
    plain = _collect(tmp_path / "a")
    shaped = _collect(tmp_path / "b", overlong_buffer=3)
    for a, b in zip(plain.items, shaped.items, strict=True):
        for s, t in zip(a.sequences, b.sequences, strict=True):
            assert s.completion_ids == t.completion_ids  # the same rollouts (same seed)
            assert t.reward == pytest.approx(
                s.reward + overlong_penalty(len(s.completion_ids), 6, 3, 1.0)
            )
    assert any(len(s.completion_ids) > 3 for g in plain.items for s in g.sequences)


@pytest.mark.slow
def test_mask_truncated_takes_cut_completions_out_of_the_loss(tmp_path: Path) -> None:
    losses = {}
    for masked in (False, True):
        doc = spec_for("dapo", "builtin:reverse", batch_size=4)
        doc["rollout"] |= {"mask_truncated": masked}
        doc["rewards"] = [{"type": "length_penalty", "target_chars": 3, "scale": 1.0}]
        trainer = Trainer(load_spec(doc), tmp_path / str(masked), [], resume=False)
        collected = trainer._collect(1)
        cut = collected.metrics["completion/truncated_frac"]
        loss, metrics, _ = trainer.objective.step(trainer.model, collected.items)
        losses[masked] = (cut, float(loss.detach()), float(metrics["loss/value"]))
    (cut, plain, _), (_, masked_loss, masked_value) = losses[False], losses[True]
    # The untrained model rarely ends a completion within 6 tokens: (nearly) all are cut.
    assert cut > 0.5 and plain != 0.0
    if cut == 1.0:
        assert masked_loss == 0.0 and masked_value == 0.0
    else:
        assert masked_loss != plain


@pytest.mark.slow
def test_dr_grpo_divides_by_the_rollouts_length_limit_unless_told(tmp_path: Path) -> None:
    doc = spec_for("dr_grpo", "builtin:reverse")
    assert Trainer(load_spec(doc), tmp_path / "a", [], resume=False).objective.cfg.max_len == 6
    doc["method_args"] = {"max_completion_length": 100}
    assert Trainer(load_spec(doc), tmp_path / "b", [], resume=False).objective.cfg.max_len == 100
