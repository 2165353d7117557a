"""EvaluationSpec: validated without torch, as strictly as a job spec; run_evaluation gives the
numbers an evaluation posing as a training spec gave, and writes its metrics and completions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from gro_core.evaluation.job import COMPLETIONS_FILE, METRICS_FILE, run_evaluation
from gro_core.evaluation.runs import evaluate_run
from gro_core.evaluation.spec import EvaluationSpec
from gro_core.spec import format_validation_error, load_spec
from gro_core.tasks import generate
from gro_core.trainers import run
from gro_core.trainers.checkpoint import TRAINER_STATE

TINY = "builtin:tiny-llama"
TASK = {"task": "builtin:reverse"}
SMALL = {"num_prompts": 3, "num_generations": 2, "max_new_tokens": 4, "seed": 3}


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRO_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "gro-cache"))


def problems(doc: object) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        EvaluationSpec.model_validate(doc)
    return {p["path"]: p["message"] for p in format_validation_error(caught.value, EvaluationSpec)}


# --- validation ------------------------------------------------------------------------------


def test_an_evaluation_spec_has_the_defaults_of_an_evaluation_request() -> None:
    spec = EvaluationSpec.model_validate({"model": TINY, "data": TASK})
    assert (spec.num_prompts, spec.num_generations, spec.max_new_tokens) == (64, 4, 32)
    assert (spec.temperature, spec.seed, spec.with_reference) == (1.0, 0, True)
    assert EvaluationSpec.model_validate(spec.model_dump(mode="json")) == spec


def test_unknown_keys_and_bad_values_are_refused_with_their_key_path() -> None:
    found = problems(
        {"model": TINY, "data": {**TASK, "evl": "x"}, "num_generation": 2, "temperature": 0}
    )
    assert found["data.evl"] == "unknown key 'evl'; did you mean 'eval'?"
    assert (
        found["num_generation"] == "unknown key 'num_generation'; did you mean 'num_generations'?"
    )
    assert "greater than 0" in found["temperature"]
    assert "model" in problems({"data": TASK})
    assert "rewards.0.type" in problems({"model": TINY, "data": TASK, "rewards": [{"t": 1}]})


def test_the_prompts_come_from_exactly_one_prompt_source() -> None:
    assert "exactly one" in problems({"model": TINY, "data": {}})["data"]
    assert (
        "exactly one" in problems({"model": TINY, "data": {**TASK, "eval": "rows.jsonl"}})["data"]
    )
    offline = problems({"model": TINY, "data": {"task": "builtin:reverse-preference"}})
    assert "holds preference rows" in offline["data.task"]
    assert (
        "unknown task" in problems({"model": TINY, "data": {"task": "builtin:nope"}})["data.task"]
    )


def test_a_dataset_needs_rewards_and_a_task_brings_its_own() -> None:
    assert "needs rewards" in problems({"model": TINY, "data": {"eval": "rows.jsonl"}})["rewards"]
    rewards = [{"type": "exact_match", "field": "answer"}]
    EvaluationSpec.model_validate(
        {"model": TINY, "data": {"eval": "rows.jsonl"}, "rewards": rewards}
    )


def test_validating_an_evaluation_spec_does_not_import_torch() -> None:
    # The API validates evaluations, as it does job specs, without paying for torch.
    doc = {
        "model": "job-1",
        "data": {"eval": "ds-1"},
        "rewards": [{"type": "contains", "text": "a"}],
    }
    code = (
        "import sys; from gro_core.evaluation.spec import EvaluationSpec\n"
        f"EvaluationSpec.model_validate({doc!r})\n"
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- running one -----------------------------------------------------------------------------


def posing_as_training(tmp_path: Path, data: dict, rewards: list | None = None) -> Path:
    """The spec file the worker wrote before EvaluationSpec: a remax job carrying the options."""
    doc = {
        "model": TINY,
        "method": "remax",
        "data": data,
        "rewards": rewards or [],
        "rollout": {"num_generations": 2, "max_new_tokens": 4},
        "eval": {"num_prompts": 3},
        "train": {"seed": 3},
    }
    path = tmp_path / "posing.yaml"
    path.write_text(json.dumps(doc))
    return path


def test_an_evaluation_of_a_model_matches_the_spec_that_posed_as_training(tmp_path: Path) -> None:
    spec = EvaluationSpec.model_validate({"model": TINY, "data": TASK, **SMALL})
    result = run_evaluation(spec, tmp_path / "out")
    old_samples: list[dict] = []
    file = posing_as_training(tmp_path, TASK)
    assert result.metrics == evaluate_run(str(file), spec_path=file, samples=old_samples)
    assert result.completions == old_samples
    assert len(result.completions) == 3 * (1 + 2)  # one greedy and two sampled per prompt
    assert result.metrics["eval/kl_ref"] == pytest.approx(0.0, abs=1e-4)  # its own reference
    written = json.loads((tmp_path / "out" / METRICS_FILE).read_text())
    assert written == result.metrics
    lines = (tmp_path / "out" / COMPLETIONS_FILE).read_text().splitlines()
    assert [json.loads(line) for line in lines] == result.completions
    assert run_evaluation(spec).metrics == result.metrics  # seeded, and no out_dir is fine


def test_an_evaluation_of_a_dataset_scores_its_rows_with_the_rewards(tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps(r) + "\n" for r in generate("reverse", 5, seed=1)))
    rewards = [{"type": "exact_match", "field": "answer"}]
    data = {"eval": str(rows)}
    spec = EvaluationSpec.model_validate(
        {"model": TINY, "data": data, "rewards": rewards, "with_reference": False, **SMALL}
    )
    result = run_evaluation(spec)
    assert "eval/reward/exact_match" in result.metrics and "eval/kl_ref" not in result.metrics
    assert all("answer" in c for c in result.completions)
    file = posing_as_training(tmp_path, {"train": str(rows), "eval": str(rows)}, rewards)
    assert result.metrics == evaluate_run(str(file), spec_path=file, with_reference=False)


@pytest.fixture(scope="module")
def sft_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sft-run")
    doc = {
        "model": TINY,
        "method": "sft",
        "data": {"task": "builtin:reverse-sft"},
        "train": {"steps": 2, "batch_size": 4, "lr": 1e-2, "warmup_steps": 0},
        "eval": {"every": 0},
        "checkpoint": {"every": 0, "keep": 1},
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRO_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "gro-cache"))
        run(load_spec(doc), out, [])
    return out


def test_an_evaluation_of_a_run_loads_its_latest_checkpoint_as_the_run_trained_it(
    tmp_path: Path, sft_run: Path
) -> None:
    checkpoint = sft_run / "checkpoints" / "step-2"
    spec = EvaluationSpec.model_validate({"model": str(sft_run), "data": TASK, **SMALL})
    result = run_evaluation(spec)
    file = posing_as_training(tmp_path, TASK)
    assert result.metrics == evaluate_run(str(checkpoint), spec_path=file)
    assert result.metrics["eval/kl_ref"] > 0.1, "KL to the run's starting model"
    on_itself = spec.model_copy(update={"reference_model": str(checkpoint)})
    assert run_evaluation(on_itself).metrics["eval/kl_ref"] == pytest.approx(0.0, abs=1e-4)


def test_a_reward_model_checkpoint_is_refused(tmp_path: Path) -> None:
    checkpoint = tmp_path / "checkpoints" / "step-1"
    checkpoint.mkdir(parents=True)
    doc = {"model": TINY, "method": "reward_model", "data": {"task": "builtin:reverse-preference"}}
    torch.save({"spec": load_spec(doc).model_dump(mode="json")}, checkpoint / TRAINER_STATE)
    spec = EvaluationSpec.model_validate({"model": str(tmp_path), "data": TASK, **SMALL})
    with pytest.raises(ValueError, match="a reward model does not generate"):
        run_evaluation(spec)
