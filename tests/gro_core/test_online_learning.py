"""Acceptance: after a short SFT warm-up, every online preset raises held-out greedy reward.

The warm-up imitates a sloppy demonstrator (`gro_core.tasks.reverse_copy_demonstrations`): SFT
on `reverse-sft` prompts whose completions are the reversed word 40% of the time and the word
copied unchanged otherwise. The SFT model is then partly right: its greedy completion mostly
copies, while sampling reverses often enough that rollouts find rewarded answers. Each preset
trains on `builtin:reverse` prompts with the task's exact-match reward, and the run's own step-0
and final evaluations on the same 256 held-out prompts are compared. The warm-up is shared by
the session, so all presets start from one checkpoint.

Why not the issue's first idea, plain 2-digit arithmetic: from a 3000-step arithmetic warm-up
(25% greedy accuracy, nearly every miss in the units digit), even supervised fine-tuning on the
right answers of 3200 fresh problems does not raise held-out accuracy (0.25 -> 0.19 at lr 1e-4,
0.28 at 3e-5), so no reward signal can in a CI budget: the limit is how fast this 0.44M-parameter
model learns the units table, not the online methods. Plain reversal from a clean warm-up did
learn (+0.06 to +0.25 in 200 steps) but by how much depended on the warm-up's exact checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gro_core.spec import load_spec
from gro_core.tasks import reverse_copy_demonstrations
from gro_core.trainers import JsonlWriter, run

pytestmark = pytest.mark.slow

ONLINE_PRESETS = ("rloo", "remax", "grpo", "reinforce_pp", "awr", "gro")
WARMUP_STEPS = 250
REVERSED_SHARE = 0.4  # of the warm-up's demonstrations; the rest copy the word
ONLINE_STEPS = 100
# Observed gains are +0.21 to +0.26 (README); the bar is several times the noise of a greedy
# accuracy over 256 prompts, measured twice on the same prompts.
MIN_GAIN = 0.15


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRO_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "gro-cache"))


def _run(out: Path, doc: dict) -> list[dict]:
    """Train `doc` into `out`; the metrics it wrote, in order."""
    writer = JsonlWriter(out)
    run(load_spec(doc), out, [writer])
    writer.close()
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def write_sloppy_demonstrations(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in reverse_copy_demonstrations(n, seed=0, reversed_share=REVERSED_SHARE):
            f.write(json.dumps({"prompt": row["prompt"], "completion": row["completion"]}) + "\n")


@pytest.fixture(scope="session")
def sloppy_warmup(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The SFT checkpoint every online preset starts from."""
    out = tmp_path_factory.mktemp("sft-sloppy-reverse")
    write_sloppy_demonstrations(out / "demos.jsonl", WARMUP_STEPS * 32)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("GRO_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "gro-cache"))
        _run(
            out,
            {
                "model": "builtin:tiny-llama",
                "method": "sft",
                "data": {"train": str(out / "demos.jsonl")},
                "train": {"steps": WARMUP_STEPS, "batch_size": 32, "lr": 1e-3, "warmup_steps": 20},
                "eval": {"every": 0},
                "checkpoint": {"every": 0, "keep": 1},
            },
        )
    return out / "checkpoints" / f"step-{WARMUP_STEPS}"


def online_spec(model: Path, method: str, steps: int, seed: int = 0) -> dict:
    return {
        "model": str(model),
        "method": method,
        "data": {"task": "builtin:reverse"},
        "rollout": {"num_generations": 8, "max_new_tokens": 8, "temperature": 1.0},
        "train": {"steps": steps, "batch_size": 16, "lr": 3e-4, "warmup_steps": 10, "seed": seed},
        "eval": {"every": steps, "num_prompts": 256},
        "checkpoint": {"every": 0, "keep": 1},
    }


def eval_series(metrics: list[dict], name: str) -> list[tuple[int, float]]:
    return [(m["step"], m["value"]) for m in metrics if m["name"] == name]


@pytest.mark.parametrize("method", ONLINE_PRESETS)
def test_online_preset_raises_held_out_greedy_reward(
    tmp_path: Path, sloppy_warmup: Path, method: str
) -> None:
    metrics = _run(tmp_path, online_spec(sloppy_warmup, method, ONLINE_STEPS))
    (first_step, before), (last_step, after) = eval_series(metrics, "eval/reward")
    assert (first_step, last_step) == (0, ONLINE_STEPS)
    # Partly right to start with: greedy mostly copies, samples often reverse.
    assert before <= 0.3
    assert eval_series(metrics, "eval/pass@8")[0][1] >= 0.2
    print(f"{method}: held-out greedy reward {before:.3f} -> {after:.3f}")
    assert after >= before + MIN_GAIN


def test_dapo_with_dynamic_sampling_raises_held_out_greedy_reward(
    tmp_path: Path, sloppy_warmup: Path
) -> None:
    """DAPO's loss with its sampling: flat groups dropped and refilled, soft overlong penalty
    over the last 2 tokens; same budget and bar as the presets above."""
    doc = online_spec(sloppy_warmup, "dapo", ONLINE_STEPS)
    doc["method_args"] = {"epsilon_high": 0.28}
    doc["rollout"] |= {"dynamic_sampling": True, "overlong_buffer": 2}
    metrics = _run(tmp_path, doc)
    (_, before), (_, after) = eval_series(metrics, "eval/reward")
    extra = [v for _, v in eval_series(metrics, "sampling/extra_prompts")]
    assert len(extra) == ONLINE_STEPS and sum(extra) > 0  # groups were dropped and refilled
    print(f"dapo + dynamic sampling: held-out greedy reward {before:.3f} -> {after:.3f}")
    assert after >= before + MIN_GAIN


def test_same_seed_gives_the_same_run(tmp_path: Path, sloppy_warmup: Path) -> None:
    def metrics(out: Path, seed: int) -> list[dict]:
        found = _run(out, online_spec(sloppy_warmup, "gro", 6, seed))
        # Wall-clock measurements (perf/ rates, the time/ clock) differ between any two runs.
        return [m for m in found if not m["name"].startswith(("perf/", "time/"))]

    first = metrics(tmp_path / "a", 0)
    assert metrics(tmp_path / "b", 0) == first
    # ...and the comparison can fail: another seed draws other prompts and rollouts.
    assert metrics(tmp_path / "c", 1) != first
