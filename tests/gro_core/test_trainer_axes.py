"""The axes the trainer logs itself every step: `time/elapsed_s` (wall seconds since the run
started) and `train/samples` (examples trained on), both continued across a resume."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import pytest

from gro_core.spec import load_spec
from gro_core.tasks import generate
from gro_core.trainers import Callback, Trainer, run
from gro_core.trainers.checkpoint import load_trainer_state

TINY = "builtin:tiny-llama"


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRO_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "gro-cache"))


def spec_for(method: str, task: str, steps: int = 4, **train: int) -> dict:
    return {
        "model": TINY,
        "method": method,
        "data": {"task": task},
        "rollout": {"num_generations": 4, "max_new_tokens": 4},
        "train": {"steps": steps, "batch_size": 4, "lr": 1e-3, "warmup_steps": 0} | train,
        "eval": {"every": 0},
        "checkpoint": {"every": 2, "keep": 4},
    }


class Recorder(Callback):
    """Every step's metrics as the loop hands them to any callback (the CLI's, the worker's)."""

    def __init__(self, pause_s: float = 0.0) -> None:
        self.steps: dict[int, dict[str, float]] = {}
        self.pause_s = pause_s

    def on_metrics(self, step: int, metrics: dict[str, float]) -> None:
        if "train/samples" in metrics:  # training steps; evaluations log apart
            self.steps[step] = dict(metrics)

    def on_step_end(self, step: int, total: int, metrics: dict[str, float]) -> None:
        time.sleep(self.pause_s)  # wall time the clock must count


def axis(recorder: Recorder, name: str) -> list[float]:
    return [recorder.steps[s][name] for s in sorted(recorder.steps)]


@pytest.mark.parametrize(
    ("method", "task", "per_step"),
    [
        ("sft", "builtin:reverse-sft", 4),  # a dataset row each
        ("dpo", "builtin:reverse-preference", 4),  # a preference pair counts once
        ("grpo", "builtin:reverse", 4 * 4),  # every completion: 4 prompts × G = 4
    ],
)
def test_every_step_logs_the_samples_trained_on_and_the_run_clock(
    tmp_path: Path, method: str, task: str, per_step: int
) -> None:
    recorder = Recorder()
    doc = spec_for(method, task, num_iterations=2 if method == "grpo" else 1)
    run(load_spec(doc), tmp_path, [recorder])
    assert axis(recorder, "train/samples") == [per_step * s for s in (1, 2, 3, 4)]
    clock = axis(recorder, "time/elapsed_s")
    assert all(0 < a < b for a, b in itertools.pairwise(clock)), clock


@pytest.mark.parametrize(("kind", "samples"), [("preference", 2 * 4 + 2), ("sft", 2 * 4 + 2 * 4)])
def test_offline_rows_mixed_online_count_as_rows_a_pair_once(
    tmp_path: Path, kind: str, samples: int
) -> None:
    rows = tmp_path / "offline.jsonl"
    rows.write_text(
        "".join(json.dumps(r) + "\n" for r in generate(f"arithmetic-{kind}", 32, seed=1))
    )
    doc = spec_for("gro", "builtin:arithmetic")
    doc["data"] = {"task": "builtin:arithmetic", "train": str(rows), "offline_mix": 0.5}
    trainer = Trainer(load_spec(doc), tmp_path / "run", [], resume=False)
    # Two prompts sampled G = 4 times, and two offline rows: a pair once, a demonstration as
    # one completion of its group beside G - 1 rollouts.
    assert trainer._collect(1).samples == samples


def test_a_resumed_run_continues_both_axes_from_its_checkpoint(tmp_path: Path) -> None:
    doc = spec_for("sft", "builtin:reverse-sft", steps=6)

    class StopAfter(Recorder):
        def should_stop(self) -> bool:
            return max(self.steps, default=0) >= 3

    first = StopAfter(pause_s=0.3)
    assert run(load_spec(doc), tmp_path, [first]).steps == 3
    state = load_trainer_state(tmp_path / "checkpoints" / "step-3")
    assert state["samples"] == 12
    # Step 3's clock is read before its own pause: it counts the pauses after steps 1 and 2.
    assert state["elapsed_s"] >= first.steps[3]["time/elapsed_s"] >= 2 * 0.3

    second = Recorder()
    assert run(load_spec(doc), tmp_path, [second], resume=True).steps == 6
    assert axis(second, "train/samples") == [16, 20, 24]
    # Tokens trained on (train/tokens, a job's trained_tokens) grow on from the checkpoint's.
    tokens = axis(first, "train/tokens") + axis(second, "train/tokens")
    assert state["tokens"] == tokens[2] > 0
    assert all(a < b for a, b in itertools.pairwise(tokens)), tokens
    # The resumed attempt's clock starts where the checkpoint's stopped, not at zero.
    assert second.steps[4]["time/elapsed_s"] > state["elapsed_s"]
