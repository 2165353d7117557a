"""Data parallel: 2 processes under torchrun (gloo, CPU) equal 1 process on the same batch."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from gro_core.models import load_run_model, resolve_model
from gro_core.models.export import export_checkpoint
from gro_core.models.sharded import is_sharded_only
from gro_core.spec import load_spec
from gro_core.tasks import generate
from gro_core.trainers.distributed import Ranks

pytestmark = pytest.mark.slow


def test_shards_are_equal_and_contiguous() -> None:
    items = list(range(8))
    assert [Ranks(r, 2).shard(items) for r in range(2)] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    with pytest.raises(ValueError, match="multiple of the process count"):
        Ranks(0, 3).shard(items)


def _free_port() -> int:
    """A port nobody listens on now: two runs in one session must not share a rendezvous."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _train(
    tmp_path: Path, name: str, procs: int, spec: Path, resume: bool = False, timeout: int = 600
) -> Path:
    out = tmp_path / name
    cli = ["-m", "gro_core.cli", "train", str(spec), "--out", str(out), "--quiet"]
    cli += ["--resume"] if resume else []
    launcher = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        str(procs),
        "--master_port",
        str(_free_port()),
    ]
    cmd = [*launcher, *cli] if procs > 1 else [sys.executable, *cli]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    subprocess.run(cmd, check=True, env=env, cwd=Path(__file__).parents[2], timeout=timeout)
    return out


@pytest.mark.parametrize("method", ["sft", "dpo", "kto"])
def test_two_processes_reach_the_weights_of_one(tmp_path: Path, method: str) -> None:
    # kto: each rank's z0 from its own half of the mismatched pairs took other steps than one
    # process's z0 over all of them; the ranks now average their means first (as TRL does).
    task = "builtin:arithmetic-sft" if method == "sft" else "builtin:arithmetic-preference"
    spec = tmp_path / "job.yaml"
    spec.write_text(
        json.dumps(
            {
                "model": "builtin:tiny-llama",
                "method": method,
                "data": {"task": task},
                "train": {"steps": 4, "batch_size": 8, "lr": 1e-3, "warmup_steps": 1},
                "eval": {"every": 0},
                "checkpoint": {"every": 0, "keep": 1},
            }
        )
    )
    one = _train(tmp_path, "one", 1, spec)
    two = _train(tmp_path, "two", 2, spec)
    a = load_file(one / "checkpoints" / "step-4" / "model.safetensors")
    b = load_file(two / "checkpoints" / "step-4" / "model.safetensors")
    start = load_file(
        Path(os.environ["GRO_CACHE_DIR"]) / "models" / "tiny-llama" / "model.safetensors"
    )
    assert any(not torch.equal(a[k], start[k]) for k in a), "training changed nothing"
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-5, rtol=1e-4), key
    losses = [json.loads(x) for x in (two / "metrics.jsonl").read_text().splitlines()]
    assert len({m["step"] for m in losses}) == 4, "rank 0 alone reports, once per step"


def test_two_processes_count_the_samples_of_both(tmp_path: Path) -> None:
    spec = tmp_path / "job.yaml"
    doc = {
        "model": "builtin:tiny-llama",
        "method": "sft",
        "data": {"task": "builtin:arithmetic-sft"},
        "train": {"steps": 2, "batch_size": 8, "lr": 1e-3, "warmup_steps": 0},
        "eval": {"every": 0},
        "checkpoint": {"every": 0, "keep": 1},
    }
    spec.write_text(json.dumps(doc))
    two = _train(tmp_path, "two", 2, spec)
    lines = [json.loads(x) for x in (two / "metrics.jsonl").read_text().splitlines()]
    # Each rank trains on 4 rows a step; rank 0 reports the sum over both.
    assert [m["value"] for m in lines if m["name"] == "train/samples"] == [8, 16]


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRO_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "gro-cache"))


@pytest.fixture
def _tiny_llama_built() -> None:
    # Built once here: two ranks that both find the cache empty race to build it, and one has
    # been seen reading the other's directory before its config was complete.
    resolve_model("builtin:tiny-llama")


@pytest.mark.usefixtures("_tiny_llama_built")
# sft's pair is the fsdp pairs' sft-checkpointing (recomputing activations changes no number).
@pytest.mark.parametrize("method", ["dpo"])
def test_two_fsdp_processes_reach_the_weights_of_one(tmp_path: Path, method: str) -> None:
    # fully_shard per block + root: each rank holds half the weights, yet the step is the same.
    task = {"sft": "builtin:arithmetic-sft", "dpo": "builtin:arithmetic-preference"}[method]
    doc = {
        "model": "builtin:tiny-llama",
        "method": method,
        "data": {"task": task},
        "train": {"steps": 3, "batch_size": 8, "lr": 1e-3, "warmup_steps": 1},
        "eval": {"every": 0},
        "checkpoint": {"every": 0, "keep": 1},
    }
    one_spec, two_spec = tmp_path / "one.json", tmp_path / "two.json"
    one_spec.write_text(json.dumps(doc))
    sharded = {"nproc_per_node": 2, "strategy": "fsdp"}
    two_spec.write_text(json.dumps(doc | {"resources": sharded}))
    one = _train(tmp_path, "one", 1, one_spec)
    two = _train(tmp_path, "two", 2, two_spec)
    a = load_file(one / "checkpoints" / "step-3" / "model.safetensors")
    b = load_file(two / "checkpoints" / "step-3" / "model.safetensors")
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-5, rtol=1e-4), key
    # The consolidated directory is plain save_pretrained output.
    from transformers import AutoModelForCausalLM

    loaded = AutoModelForCausalLM.from_pretrained(two / "checkpoints" / "step-3")
    assert torch.equal(loaded.state_dict()["model.norm.weight"], b["model.norm.weight"])


@pytest.mark.usefixtures("_tiny_llama_built")
def test_an_fsdp_run_resumed_from_a_sharded_checkpoint_ends_as_one_never_stopped(
    tmp_path: Path,
) -> None:
    # grpo with a live reference (sharded like the policy) and rollouts: the resumed run
    # must restore the shards of both, AdamW's state and every rank's sampling RNG.
    doc = _GRPO | {
        "train": _GRPO["train"] | {"steps": 4},
        "checkpoint": {"every": 2, "keep": 3},
        "resources": {"nproc_per_node": 2, "strategy": "fsdp"},
    }
    spec = tmp_path / "job.json"
    spec.write_text(json.dumps(doc))
    whole = _train(tmp_path, "whole", 2, spec)
    middle = whole / "checkpoints" / "step-2"
    # A checkpoint mid-run is each rank's shards only: nobody gathered the whole model.
    assert (middle / "sharded" / ".metadata").is_file()
    assert sorted(p.name for p in middle.glob("rng-rank-*.pt")) == [
        "rng-rank-0.pt",
        "rng-rank-1.pt",
    ]
    assert not (middle / "model.safetensors").exists()
    # The run as it stood when interrupted right after step 2's checkpoint.
    parts = tmp_path / "parts"
    shutil.copytree(whole, parts)
    shutil.rmtree(parts / "checkpoints" / "step-4")
    _train(tmp_path, "parts", 2, spec, resume=True)
    a = load_file(whole / "checkpoints" / "step-4" / "model.safetensors")
    b = load_file(parts / "checkpoints" / "step-4" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    steps = [json.loads(x)["step"] for x in (parts / "metrics.jsonl").read_text().splitlines()]
    assert sorted(set(steps)) == [1, 2, 3, 4]


_SHARE_SCRIPT = """
import json, os, sys
from pathlib import Path
from gro_core.spec import load_spec
from gro_core.tasks import generate
from gro_core.trainers.loop import Trainer
from gro_core.trainers.strategy import local_numel

trainer = Trainer(load_spec(sys.argv[1]), Path(sys.argv[2]), [], False)
trainer.train_step(1)  # AdamW state exists after one step
collected = trainer._collect(2)
loss, _, _ = trainer.objective.step(trainer.model, collected.items)
loss.backward()
optim = [t for s in trainer.optimizer.state.values() for t in s.values() if t.dim() > 0]
counts = {
    "params": local_numel(list(trainer.model.parameters())),
    "grads": local_numel([p.grad for p in trainer.params]),
    "optim": local_numel(optim),
    "full": sum(p.numel() for p in trainer.model.parameters()),
    "reference": local_numel(list(trainer.objective.reference.copy.parameters())),
    "reference_full": sum(p.numel() for p in trainer.objective.reference.copy.parameters()),
}
Path(sys.argv[2], f"counts-{os.environ['RANK']}.json").write_text(json.dumps(counts))
"""


@pytest.mark.usefixtures("_tiny_llama_built")
def test_each_fsdp_rank_holds_half_of_the_weights_gradients_adamw_state_and_reference(
    tmp_path: Path,
) -> None:
    # grpo: an online method whose KL reference is a separate frozen copy of the policy.
    doc = {
        "model": "builtin:tiny-llama",
        "method": "grpo",
        "data": {"task": "builtin:reverse"},
        "rollout": {"num_generations": 2, "max_new_tokens": 4},
        "train": {"steps": 2, "batch_size": 4, "lr": 1e-3},
        "eval": {"every": 0},
        "checkpoint": {"every": 0, "keep": 1},
        "resources": {"nproc_per_node": 2, "strategy": "fsdp"},
    }
    spec, script, out = tmp_path / "job.json", tmp_path / "share.py", tmp_path / "out"
    spec.write_text(json.dumps(doc))
    script.write_text(_SHARE_SCRIPT)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    cmd = [*launcher, "--master_port", str(_free_port()), str(script), str(spec), str(out)]
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[2])}
    subprocess.run(cmd, check=True, env=env, cwd=Path(__file__).parents[2], timeout=600)
    counts = [json.loads((out / f"counts-{r}.json").read_text()) for r in range(2)]
    full = counts[0]["full"]
    for rank in counts:
        # Dim-0 shards of odd-sized tensors are uneven by a row at most: ~1/2, not exactly.
        assert abs(rank["params"] - full / 2) <= 0.02 * full, rank
        assert abs(rank["grads"] - full / 2) <= 0.02 * full, rank
        assert abs(rank["optim"] - full) <= 0.04 * full, rank  # exp_avg + exp_avg_sq
        ref = rank["reference_full"]  # the frozen copy, sharded like the policy
        assert abs(rank["reference"] - ref / 2) <= 0.02 * ref and ref >= full, rank
    assert sum(r["params"] for r in counts) == full
    assert sum(r["reference"] for r in counts) == counts[0]["reference_full"]


@pytest.mark.usefixtures("_tiny_llama_built")
def test_an_online_fsdp_run_samples_on_both_ranks_until_both_are_done(tmp_path: Path) -> None:
    # Each rank samples its own prompts, so its completions end at other lengths than its
    # peer's; every decoding step of a sharded model gathers blocks from both ranks.
    doc = {
        "model": "builtin:tiny-llama",
        "method": "grpo",
        "data": {"task": "builtin:reverse"},
        "rollout": {"num_generations": 4, "max_new_tokens": 12, "temperature": 1.0},
        "train": {"steps": 2, "batch_size": 4, "lr": 1e-3, "warmup_steps": 0},
        "eval": {"every": 0},
        "checkpoint": {"every": 0, "keep": 1},
        "resources": {"nproc_per_node": 2, "strategy": "fsdp"},
    }
    spec = tmp_path / "grpo.json"
    spec.write_text(json.dumps(doc))
    two = _train(tmp_path, "two", 2, spec)
    lines = [json.loads(x) for x in (two / "metrics.jsonl").read_text().splitlines()]
    rewards = [m for m in lines if m["name"] == "reward/mean"]
    assert [m["step"] for m in rewards] == [1, 2]
    # Rank 0 reports the samples of both ranks' rollouts.
    assert [m["value"] for m in lines if m["name"] == "train/samples"] == [16, 32]
    assert (two / "checkpoints" / "step-2" / "model.safetensors").exists()


# --- fsdp reaches one process's weights: grpo, LoRA, gradient checkpointing ---------------------

_GRPO = {
    "model": "builtin:tiny-llama",
    "method": "grpo",
    "data": {"task": "builtin:reverse"},
    # Graded rewards (not the task's mostly-zero exact match), so every group has advantages.
    "rewards": [{"type": "text_similarity", "field": "answer"}],
    "rollout": {"num_generations": 4, "max_new_tokens": 8, "temperature": 1.0},
    "train": {"steps": 3, "batch_size": 4, "lr": 1e-3, "warmup_steps": 1},
    "eval": {"every": 0},
    "checkpoint": {"every": 0, "keep": 1},
}
# Checkpoints at every step: an fsdp run's earlier ones hold shards only (see the export tests).
_EVERY_STEP = {"checkpoint": {"every": 1, "keep": 3}}
_LORA = {"lora": {"r": 4, "alpha": 8.0}}
_OFFLINE: dict[str, Any] = {
    "model": "builtin:tiny-llama",
    "train": {"steps": 3, "batch_size": 8, "lr": 1e-3, "warmup_steps": 1},
    "eval": {"every": 0},
    **_EVERY_STEP,
}
_SFT = _OFFLINE | {"method": "sft", "data": {"task": "builtin:arithmetic-sft"}}
_OFFLINE_ROWS = "offline.jsonl"  # data.train of a run that mixes offline rows in: written per run
_RUNS: dict[str, dict[str, Any]] = {
    "grpo": _GRPO,  # with a live reference (KL), sharded like the policy
    "grpo-lora": _GRPO | _LORA | _EVERY_STEP,
    "sft-checkpointing": _SFT | {"model_options": {"gradient_checkpointing": True}},
    # Adapters trainable under fsdp, the frozen base sharded (and dpo's reference: the base
    # with the adapters off).
    "sft-lora": _SFT | _LORA,
    "dpo-lora": _OFFLINE
    | _LORA
    | {"method": "dpo", "data": {"task": "builtin:arithmetic-preference"}},
    # Returns whitened over the whole step (both ranks' tokens), and an offline mix whose
    # 2 offline places of 8 fall in rank 1's share beside 2 of its prompts.
    "reinforce_pp-mix": _GRPO
    | {
        "method": "reinforce_pp",
        "data": {"task": "builtin:arithmetic", "train": _OFFLINE_ROWS, "offline_mix": 0.25},
        "train": _GRPO["train"] | {"batch_size": 8},
    },
}


class _Pairs:
    """Each named run once in one process and once in 2 fsdp ranks, launched when a test
    first asks for it and shared by every test of the module that reads it."""

    def __init__(self, root: Path, cache: Path) -> None:
        self.root, self.cache, self.done = root, cache, {}

    def __call__(self, name: str) -> tuple[Path, Path]:
        if name not in self.done:
            with pytest.MonkeyPatch.context() as patch:
                patch.setenv("GRO_CACHE_DIR", str(self.cache))
                resolve_model("builtin:tiny-llama")  # before the ranks race to build it
                base = self.root / name
                base.mkdir()
                doc = _with_offline_rows(_RUNS[name], base)
                one_spec, two_spec = base / "one.json", base / "two.json"
                one_spec.write_text(json.dumps(doc))
                sharded = {"resources": {"nproc_per_node": 2, "strategy": "fsdp"}}
                two_spec.write_text(json.dumps(doc | sharded))
                self.done[name] = (
                    _train(base, "one", 1, one_spec),
                    _train(base, "two", 2, two_spec),
                )
        return self.done[name]


def _with_offline_rows(doc: dict[str, Any], base: Path) -> dict[str, Any]:
    """`doc`, its data.train rows written under `base` when it names _OFFLINE_ROWS."""
    if doc["data"].get("train") != _OFFLINE_ROWS:
        return doc
    rows = base / _OFFLINE_ROWS
    records = generate("arithmetic-sft", 32, seed=1)
    rows.write_text("".join(json.dumps(r) + "\n" for r in records))
    return doc | {"data": doc["data"] | {"train": str(rows)}}


@pytest.fixture(scope="module")
def fsdp_pairs(tmp_path_factory: pytest.TempPathFactory) -> _Pairs:
    return _Pairs(
        tmp_path_factory.mktemp("fsdp-pairs"), tmp_path_factory.getbasetemp() / "gro-cache"
    )


def _weights(run: Path) -> dict[str, torch.Tensor]:
    """The run's final weights: the whole model, or a LoRA run's adapters."""
    files = sorted((run / "checkpoints" / "step-3").glob("*.safetensors"))
    assert files, f"no weights in {run}"
    return {k: v for f in files for k, v in load_file(f).items()}


def _curve(run: Path, name: str) -> list[float]:
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [m["value"] for m in sorted(lines, key=lambda m: m["step"]) if m["name"] == name]


@pytest.mark.parametrize("name", list(_RUNS))
def test_two_fsdp_processes_reach_the_weights_of_one_with_lora_and_checkpointing(
    fsdp_pairs: _Pairs, name: str
) -> None:
    one, two = fsdp_pairs(name)
    a, b = _weights(one), _weights(two)
    # fsdp's consolidated state dict also names the tied head (lm_head is embed_tokens).
    assert a.keys() <= b.keys()
    if "lora" in name:  # adapters only: the frozen base is not saved, as it never moves
        assert a and all("lora_" in k for k in a), sorted(a)[:4]
    # Float summation order differs between 1 and 2 ranks (and rollouts decode through other
    # loops), which grpo's rollouts and normalised advantages carry into the weights.
    worst = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    print(f"{name}: max |one - two| = {worst:.2e}")
    for key in a:
        assert torch.allclose(a[key], b[key], atol=2e-5, rtol=1e-4), (key, worst)
    # Each rank's loss is a mean over its own units (an sft rank's share of the tokens is
    # not half): weighted by those shares, the 2-rank loss curve is the 1-process one.
    loss = "loss/sft" if name.startswith("sft") else "loss/value"
    assert len(_curve(one, loss)) == 3
    assert _curve(two, loss) == pytest.approx(_curve(one, loss), rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("name", ["grpo", "grpo-lora"])
def test_two_fsdp_grpo_processes_sample_and_report_what_one_does(
    fsdp_pairs: _Pairs, name: str
) -> None:
    one, two = fsdp_pairs(name)
    # Each prompt samples from a seed of (seed, step, its index in the step's whole batch).
    rewards = _curve(one, "reward/mean")
    assert len(rewards) == 3 and len(set(rewards)) > 1, rewards  # graded, and training moved
    assert _curve(two, "reward/mean") == pytest.approx(rewards, abs=1e-6)
    assert _curve(two, "completion/length") == pytest.approx(_curve(one, "completion/length"))
    # Loss metrics are weighted by each rank's share of the units, so the curves are one's.
    # (kl/ref is a token mean inside each share of sequences: a diagnostic, not compared.)
    for metric in ("loss/value", "loss/policy", "loss/kl"):
        assert _curve(two, metric) == pytest.approx(_curve(one, metric), rel=1e-3, abs=1e-6)


# --- an fsdp run's earlier checkpoints (shards only) export and load ----------------------------


def test_an_earlier_fsdp_checkpoint_exports_the_weights_of_one_process(
    fsdp_pairs: _Pairs, tmp_path: Path
) -> None:
    one, two = fsdp_pairs("sft-checkpointing")
    middle = two / "checkpoints" / "step-1"
    assert is_sharded_only(middle) and not is_sharded_only(two / "checkpoints" / "step-3")
    out = export_checkpoint(middle, tmp_path / "exported")
    exported = AutoModelForCausalLM.from_pretrained(out).state_dict()
    reference = load_file(one / "checkpoints" / "step-1" / "model.safetensors")
    last = load_file(two / "checkpoints" / "step-3" / "model.safetensors")
    assert any(not torch.equal(exported[k], last[k]) for k in reference), "step 1 is step 3"
    for key, value in reference.items():
        assert torch.allclose(exported[key], value, atol=1e-5, rtol=1e-4), key
    assert not is_sharded_only(middle)  # gathered once, in place, for every later reader


def test_an_earlier_lora_fsdp_checkpoint_loads_its_adapters(fsdp_pairs: _Pairs) -> None:
    one, two = fsdp_pairs("grpo-lora")
    middle = two / "checkpoints" / "step-1"
    assert is_sharded_only(middle)
    spec = load_spec(json.loads((two.parent / "two.json").read_text()))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRO_CACHE_DIR", str(fsdp_pairs.cache))
        model = load_run_model(spec, middle, device="cpu")
    assert isinstance(model, PeftModel) and (middle / "adapter_config.json").is_file()
    saved = load_file(one / "checkpoints" / "step-1" / "adapter_model.safetensors")
    gathered = load_file(middle / "adapter_model.safetensors")
    assert saved.keys() == gathered.keys() and any(v.abs().sum() > 0 for v in saved.values())
    for key, value in saved.items():
        assert torch.allclose(gathered[key], value, atol=2e-5, rtol=1e-4), key


# --- dynamic sampling under fsdp: ranks that need different rounds --------------------------


def flat_on_rank_zero(completions: list[str], rows: list[dict]) -> list[float]:
    """Equal rewards on rank 0 (every group flat: it resamples every round), graded on rank 1
    (no group flat: it needs no round)."""
    if os.environ.get("RANK") == "0":
        return [0.0] * len(completions)
    return [float(len(c)) for c in completions]


@pytest.mark.usefixtures("_tiny_llama_built")
def test_fsdp_ranks_needing_different_dynamic_sampling_rounds_still_finish(
    tmp_path: Path,
) -> None:
    doc = _GRPO | {
        "rewards": [{"type": "python", "path": f"{__name__}:flat_on_rank_zero"}],
        "rollout": _GRPO["rollout"] | {"dynamic_sampling": True, "max_resample_rounds": 2},
        "train": _GRPO["train"] | {"steps": 2},
        "resources": {"nproc_per_node": 2, "strategy": "fsdp"},
    }
    spec = tmp_path / "job.json"
    spec.write_text(json.dumps(doc))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRO_ALLOW_PYTHON_REWARDS", "1")
        two = _train(tmp_path, "two", 2, spec, timeout=240)  # a rank left waiting: timeout
    lines = [json.loads(x) for x in (two / "metrics.jsonl").read_text().splitlines()]
    rounds = [m["value"] for m in lines if m["name"] == "sampling/extra_rounds"]
    assert rounds and max(rounds) > 0  # averaged over ranks: rank 0 resampled, rank 1 did not
    assert (two / "checkpoints" / "step-2" / "model.safetensors").exists()
