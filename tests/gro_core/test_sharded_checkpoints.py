"""An fsdp run's checkpoints before its last hold shards only: exporting, evaluating or
training from one gathers them in one process (gro_core.models.sharded)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from gro_core.models import load_run_model, resolve_model
from gro_core.models.export import export_checkpoint
from gro_core.models.sharded import is_sharded_only
from gro_core.spec import load_spec
from tests.gro_core.test_distributed import _train

pytestmark = pytest.mark.slow

SPEC = {
    "model": "builtin:tiny-llama",
    "method": "sft",
    "data": {"task": "builtin:arithmetic-sft"},
    "train": {"steps": 2, "batch_size": 8, "lr": 1e-3, "warmup_steps": 0},
    "eval": {"every": 0},
    "checkpoint": {"every": 1, "keep": 2},
}
FSDP = {"nproc_per_node": 2, "strategy": "fsdp"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One process, two fsdp processes, and two fsdp processes with LoRA, 2 steps each with a
    checkpoint at both: step-1 of an fsdp run is shards only."""
    root = tmp_path_factory.mktemp("sharded")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRO_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "gro-cache"))
        resolve_model("builtin:tiny-llama")  # built before two ranks race to build it
        docs = {
            "one": SPEC,
            "fsdp": {**SPEC, "resources": FSDP},
            "lora": {**SPEC, "resources": FSDP, "lora": {"r": 4}},
        }
        out = {}
        for name, doc in docs.items():
            (root / f"{name}.json").write_text(json.dumps(doc))
            procs = 1 if name == "one" else 2
            out[name] = _train(root, name, procs, root / f"{name}.json")
        yield out


def step(run: Path, n: int) -> Path:
    return run / "checkpoints" / f"step-{n}"


def test_an_earlier_fsdp_checkpoint_exports_the_weights_of_one_process(
    runs: dict[str, Path], tmp_path: Path
):
    middle = step(runs["fsdp"], 1)
    assert is_sharded_only(middle) and not is_sharded_only(step(runs["fsdp"], 2))
    out = export_checkpoint(middle, tmp_path / "exported")
    exported = AutoModelForCausalLM.from_pretrained(out).state_dict()
    reference = load_file(step(runs["one"], 1) / "model.safetensors")
    last = load_file(step(runs["fsdp"], 2) / "model.safetensors")
    assert any(not torch.equal(exported[k], last[k]) for k in reference), "step 1 is not step 2"
    for key, value in reference.items():
        assert torch.allclose(exported[key], value, atol=1e-5, rtol=1e-4), key
    assert not is_sharded_only(middle)  # gathered once, in place, for every later reader


def test_a_lora_fsdp_checkpoint_gathers_its_adapters(runs: dict[str, Path]):
    middle = step(runs["lora"], 1)
    assert is_sharded_only(middle)
    spec = load_spec(json.loads((runs["lora"].parent / "lora.json").read_text()))
    model = load_run_model(spec, middle, device="cpu")
    assert isinstance(model, PeftModel) and (middle / "adapter_config.json").is_file()
    adapters = {k: v for k, v in model.state_dict().items() if "lora_B" in k}
    assert adapters and any(v.abs().sum() > 0 for v in adapters.values()), "B starts at zero"
