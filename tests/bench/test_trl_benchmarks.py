"""The gro side of the TRL benchmarks still runs against the current engine.

bench/offline.py and bench/online.py patch and time gro's trainer from the outside; an engine
change can break them without any other test noticing (the online one did when rollouts moved
behind `gro_core.rollout.backends`). TRL is not installed in CI (the `bench` extra), so only
gro's worker runs here, on tiny-llama, exactly as the benchmark's parent launches it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import _common as common  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # Workers are child processes: they read the cache directory from the environment.
    monkeypatch.setenv("GRO_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "gro-cache"))


def worker(script: str, *args: str) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
    return common.run_worker([str(BENCH / script), "--worker", "gro", *args], env)


def test_offline_worker_trains_every_step(tmp_path: Path) -> None:
    import offline

    data = tmp_path / "pairs.jsonl"
    offline.write_pairs(data)
    result = worker(
        "offline.py", "--model", "tiny-llama", "--data", str(data), "--out", str(tmp_path / "run")
    )
    assert result["steps"] == offline.STEPS
    assert result["wall_s"] > 0 and result["peak_rss_mb"] > 0


def test_online_worker_times_generation_and_learns(tmp_path: Path) -> None:
    import online

    prompts = tmp_path / "prompts.jsonl"
    online.write_prompts(prompts, online.SETTINGS["tiny-llama"].steps * online.PROMPTS)
    checkpoint = online.warmup_checkpoint("tiny-llama")
    result = worker(
        "online.py",
        "--model", "tiny-llama",
        "--checkpoint", str(checkpoint),
        "--prompts", str(prompts),
        "--out", str(tmp_path / "run"),
    )  # fmt: skip
    assert result["steps"] == online.SETTINGS["tiny-llama"].steps
    # The rollout backend was timed (the patch reached the sampler the trainer uses).
    assert result["timer"]["seconds"]["generate"] > 0
    assert result["timer"]["completion_tokens"] > 0
    assert len(result["rewards"]) == result["steps"] and 0.0 <= result["held_out"] <= 1.0
