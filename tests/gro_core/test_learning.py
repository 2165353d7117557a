"""Acceptance: the trainers learn, on CPU, with built-in tiny models and tasks.

Each test trains `builtin:tiny-llama` (0.44M parameters) from scratch on a built-in task
and reads the held-out metrics the run wrote, including the step-0 evaluation that every
run starts from. Budgets are CI-sized; thresholds sit below what these seeds reach.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gro_core.spec import load_spec
from gro_core.trainers import JsonlWriter, run

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRO_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "gro-cache"))


def train(tmp_path: Path, method: str, task: str, steps: int, **extra) -> dict[str, list]:
    """Run a job and return each eval metric's (step, value) series."""
    doc = {
        "model": "builtin:tiny-llama",
        "method": method,
        "data": {"task": task},
        "train": {"steps": steps, "batch_size": 32, "lr": 1e-3, "warmup_steps": 20},
        "eval": {"every": steps // 2, "num_prompts": 128},
        "checkpoint": {"every": 0, "keep": 1},
    } | extra
    writer = JsonlWriter(tmp_path)
    run(load_spec(doc), tmp_path, [writer])
    writer.close()
    series: dict[str, list] = {}
    for line in (tmp_path / "metrics.jsonl").read_text().splitlines():
        m = json.loads(line)
        if m["name"].startswith("eval/"):
            series.setdefault(m["name"], []).append((m["step"], m["value"]))
    return series


def first_last(series: list) -> tuple[float, float]:
    assert series[0][0] == 0, "the run must evaluate before its first update"
    return series[0][1], series[-1][1]


def test_dpo_reaches_90_percent_held_out_preference_accuracy(tmp_path: Path) -> None:
    series = train(tmp_path, "dpo", "builtin:reverse-preference", 400, method_args={"beta": 0.1})
    before, after = first_last(series["eval/pref_accuracy"])
    assert before < 0.65
    assert after >= 0.90
    loss_before, loss_after = first_last(series["eval/loss"])
    assert loss_after < loss_before


@pytest.mark.parametrize("method", ["kto", "cpl", "awr", "gro"])
def test_each_offline_preset_lowers_its_loss_and_raises_preference_accuracy(
    tmp_path: Path, method: str
) -> None:
    series = train(tmp_path, method, "builtin:reverse-preference", 200)
    acc_before, acc_after = first_last(series["eval/pref_accuracy"])
    loss_before, loss_after = first_last(series["eval/loss"])
    assert acc_after >= acc_before + 0.15
    assert loss_after < loss_before


@pytest.fixture(scope="module")
def reverse_sft(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """SFT on word reversal: the final checkpoint (the reward model's starting point) and the
    run's eval series. (Arithmetic needs ten times the steps to leave zero: 3000 steps, 4.5
    minutes of CI, for the same claim; the validation study trains it.)"""
    out = tmp_path_factory.mktemp("sft-reverse")
    series = train(out, "sft", "builtin:reverse-sft", 300)
    return out / "checkpoints" / "step-300", series


def test_sft_raises_held_out_exact_match_accuracy_well_above_chance(reverse_sft) -> None:
    _, series = reverse_sft
    before, after = first_last(series["eval/accuracy"])
    assert before <= 0.02  # an untrained model gets almost nothing exactly right
    assert after >= 0.3


def test_reward_model_from_an_sft_model_reaches_90_percent_pair_accuracy(
    tmp_path: Path, reverse_sft
) -> None:
    # As in RLHF practice, the reward model starts from the SFT model of the same task.
    checkpoint, _ = reverse_sft
    series = train(
        tmp_path,
        "reward_model",
        "builtin:reverse-preference",
        300,
        model=str(checkpoint),
        train={"steps": 300, "batch_size": 32, "lr": 3e-4, "warmup_steps": 20},
    )
    before, after = first_last(series["eval/pref_accuracy"])
    assert before < 0.65
    assert after >= 0.90
