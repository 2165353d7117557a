"""Choosing the rollout backend: hf by default, vllm only when installed, refused at job start
otherwise; the weights a vllm engine is synced with (LoRA merged). These run without vllm;
the vllm engine itself is tested in test_rollout_vllm.py (scripts/test-vllm)."""

from __future__ import annotations

import copy
import json
import sys
import types
from pathlib import Path

import pytest
import torch

from gro_core.cli import main as gro
from gro_core.models import LoraSettings, load_policy, load_tokenizer
from gro_core.rollout.backends import HFBackend, rollout_backend
from gro_core.rollout.sampling import RolloutSettings, sample
from gro_core.rollout.vllm_engine import trainer_weights
from gro_core.spec import SpecError, load_spec
from gro_core.trainers import Trainer

TINY = "builtin:tiny-llama"


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRO_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "gro-cache"))


def grpo_doc(backend: str) -> dict:
    return {
        "model": TINY,
        "method": "grpo",
        "data": {"task": "builtin:reverse"},
        "rollout": {"backend": backend, "num_generations": 2, "max_new_tokens": 4},
        "train": {"steps": 2, "batch_size": 2, "lr": 1e-3, "warmup_steps": 0},
        "eval": {"every": 0},
    }


@pytest.fixture
def without_vllm(monkeypatch: pytest.MonkeyPatch) -> None:
    """`import vllm` fails, as where it is not installed (even in the vllm test env)."""
    monkeypatch.setitem(sys.modules, "vllm", None)


def test_hf_backend_is_the_default_and_samples_with_the_training_model() -> None:
    spec = load_spec(grpo_doc("hf") | {"rollout": {}})
    backend = rollout_backend(spec, torch.device("cpu"))
    assert isinstance(backend, HFBackend)
    model, tok = load_policy(TINY), load_tokenizer(TINY)
    prompts = [tok("rev ab=")["input_ids"]]
    settings = RolloutSettings(max_new_tokens=5, greedy=True)
    backend.sync(model)
    assert backend(model, tok, prompts, 2, settings).completion_ids == (
        sample(model, tok, prompts, 2, settings).completion_ids
    )


@pytest.mark.usefixtures("without_vllm")
def test_vllm_backend_without_vllm_fails_at_job_start_saying_how_to_install(
    tmp_path: Path,
) -> None:
    with pytest.raises(SpecError) as caught:
        Trainer(load_spec(grpo_doc("vllm")), tmp_path, [], resume=False)
    assert caught.value.path == "rollout.backend"
    assert "vllm is not installed" in caught.value.message
    assert 'pip install -e ".[vllm]"' in caught.value.message
    assert not (tmp_path / "metrics.jsonl").exists(), "no step may run"


@pytest.mark.usefixtures("without_vllm")
def test_gro_train_reports_a_missing_vllm_as_an_error_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text(json.dumps(grpo_doc("vllm")))
    assert gro(["train", str(spec), "--out", str(tmp_path / "run"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "rollout.backend: vllm is not installed" in err and "Traceback" not in err


def test_vllm_backend_is_refused_under_torchrun(monkeypatch: pytest.MonkeyPatch) -> None:
    # An importable stand-in: the refusal must come before any engine is built.
    monkeypatch.setitem(sys.modules, "vllm", types.ModuleType("vllm"))
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(SpecError, match="single training process"):
        rollout_backend(load_spec(grpo_doc("vllm")), torch.device("cpu"))


def test_synced_weights_of_a_plain_model_are_its_state_dict() -> None:
    model = load_policy(TINY)
    ours = dict(trainer_weights(model))
    theirs = model.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)


def test_synced_weights_of_a_lora_model_are_its_merged_weights_and_leave_it_unchanged() -> None:
    model = load_policy(TINY, lora=LoraSettings(r=4, alpha=8))
    with torch.no_grad():  # peft starts B at zero, where merging changes nothing
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5, generator=torch.Generator().manual_seed(0))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ours = dict(trainer_weights(model))
    merged = copy.deepcopy(model).merge_and_unload().state_dict()
    assert ours.keys() == merged.keys()
    for name, tensor in merged.items():
        assert torch.allclose(ours[name], tensor, atol=1e-6), name
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.allclose(ours[q], load_policy(TINY).state_dict()[q]), "no delta merged"
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "merging must not mutate"
