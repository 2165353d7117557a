"""`gro train` starts the processes a spec's resources ask for (torch's elastic launcher)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gro_core.cli import main
from gro_core.models.builtin import resolve_model

ROOT = Path(__file__).parents[2]


def _spec(tmp_path: Path, **resources: object) -> Path:
    spec = tmp_path / "job.yaml"
    doc = {
        "model": "builtin:tiny-llama",
        "method": "sft",
        "data": {"task": "builtin:arithmetic-sft"},
        "train": {"steps": 3, "batch_size": 8, "lr": 1e-3, "warmup_steps": 0},
        "eval": {"every": 0},
        "checkpoint": {"every": 0, "keep": 1},
        "resources": resources,
    }
    spec.write_text(json.dumps(doc))
    return spec


def _gro_train(spec: Path, out: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    cache = tmp_path / "cache"
    # Built once here: two ranks building a builtin into a cold cache at once can race.
    resolve_model("builtin:tiny-llama", cache)
    env = os.environ | {"GRO_CACHE_DIR": str(cache), "OMP_NUM_THREADS": "1"}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)  # not a rank of some outer launcher
    cmd = [sys.executable, "-m", "gro_core.cli", "train", str(spec), "--out", str(out), "--quiet"]
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_gro_train_launches_the_ranks_of_resources(tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = _gro_train(_spec(tmp_path, nproc_per_node=2), out, tmp_path)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    samples = [m["value"] for m in lines if m["name"] == "train/samples"]
    # Rank 0 alone writes, once a step; the count is of both ranks' rows (4 each a step),
    # so two processes really trained.
    assert samples == [8, 16, 24]
    assert "gro train: 2 processes on this machine, 2 in all" in done.stderr
    assert (out / "checkpoints" / "step-3" / "model.safetensors").is_file()
    assert done.stdout.count("steps in") == 1, done.stdout


@pytest.mark.slow
def test_a_failing_rank_fails_the_command_and_is_named(tmp_path: Path) -> None:
    spec = _spec(tmp_path, nproc_per_node=2)
    data = tmp_path / "bad.jsonl"
    data.write_text('{"prompt": "1+1=", "completion": "2"}\n{"prompt": 3}\n' * 8)
    doc = json.loads(spec.read_text()) | {"data": {"train": str(data)}}
    spec.write_text(json.dumps(doc))
    done = _gro_train(spec, tmp_path / "run", tmp_path)
    assert done.returncode == 1
    # Both ranks read the same bad file and fail; which failure the elastic agent records
    # first depends on timing (the other rank may already be stopped), so either is named.
    failed = r"error: rank [01] of 2 failed \(exit code 1\): DataError: .*bad\.jsonl"
    assert re.search(failed, done.stderr), done.stderr


def test_several_machines_without_a_rendezvous_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RANK", raising=False)
    spec = _spec(tmp_path, nproc_per_node=1, nnodes=2)
    assert main(["train", str(spec), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "resources.nnodes is 2" in err and "--master-addr" in err and "--node-rank" in err
    assert not (tmp_path / "run").exists()
    args = ["--master-addr", "127.0.0.1", "--node-rank", "2"]
    assert main(["train", str(spec), "--out", str(tmp_path / "run"), *args]) == 2
    assert "--node-rank 2: must be 0..1" in capsys.readouterr().err
