"""`gro export` and LoRA checkpoints as models: plain directories transformers and peft load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from gro_core.cli import main
from gro_core.models import load_run_model, resolve_model
from gro_core.spec import load_spec
from gro_core.trainers import run

TINY = "builtin:tiny-llama"
IDS = torch.tensor([[1, 5, 9, 12, 7, 3]])


def _doc(**extra: Any) -> dict[str, Any]:
    return {
        "model": TINY,
        "method": "sft",
        "data": {"task": "builtin:reverse-sft"},
        "train": {"steps": 1, "batch_size": 2, "lr": 5e-2, "warmup_steps": 0},
        "eval": {"every": 0},
        "checkpoint": {"every": 0, "keep": 1},
    } | extra


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One-step LoRA and full-weights runs of the tiny builtin."""
    mp = pytest.MonkeyPatch()
    mp.setenv("GRO_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "gro-cache"))
    root = tmp_path_factory.mktemp("export-runs")
    try:
        run(load_spec(_doc(lora={"r": 2})), root / "lora")
        run(load_spec(_doc()), root / "full")
    finally:
        mp.undo()
    return {name: root / name / "checkpoints" / "step-1" for name in ("lora", "full")}


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRO_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "gro-cache"))


def _logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(IDS).logits


def _trained(checkpoint: Path) -> torch.nn.Module:
    """The run's own model at `checkpoint`, as gro loads it to resume."""
    spec = load_spec(torch.load(checkpoint / "trainer.pt", weights_only=False)["spec"])
    return load_run_model(spec, checkpoint, "cpu")


def _no_trainer_state(out: Path) -> None:
    assert not (out / "trainer.pt").exists()
    assert (out / "tokenizer.json").is_file() or (out / "tokenizer_config.json").is_file()


@pytest.mark.slow
def test_a_lora_checkpoint_exports_as_adapters_naming_the_real_base(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    from peft import PeftModel

    out = tmp_path / "adapter"
    assert main(["export", str(runs["lora"]), "--out", str(out)]) == 0
    _no_trainer_state(out)
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == TINY  # not the cache directory it loaded from
    assert not (out / "config.json").exists()  # adapters only
    base = AutoModelForCausalLM.from_pretrained(resolve_model(TINY))
    loaded = PeftModel.from_pretrained(base, str(out))
    torch.testing.assert_close(_logits(loaded), _logits(_trained(runs["lora"])))


@pytest.mark.slow
def test_merge_lora_writes_the_base_with_the_adapters_merged(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "merged"
    assert main(["export", str(runs["lora"].parent.parent), "--out", str(out), "--merge-lora"]) == 0
    _no_trainer_state(out)
    assert not (out / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(out)
    expected = _logits(_trained(runs["lora"]))
    torch.testing.assert_close(_logits(merged), expected, atol=1e-5, rtol=1e-5)
    base = AutoModelForCausalLM.from_pretrained(resolve_model(TINY))
    assert not torch.allclose(_logits(base), expected, atol=1e-4)  # the adapters changed it


@pytest.mark.slow
def test_a_full_checkpoint_exports_in_the_dtype_asked_for(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "bf16"
    assert main(["export", str(runs["full"]), "--out", str(out), "--dtype", "bfloat16"]) == 0
    _no_trainer_state(out)
    weights = load_file(out / "model.safetensors")
    source = load_file(runs["full"] / "model.safetensors")
    assert {t.dtype for t in weights.values()} == {torch.bfloat16}
    for name, tensor in source.items():
        torch.testing.assert_close(weights[name], tensor.to(torch.bfloat16), atol=0, rtol=0)
    assert AutoModelForCausalLM.from_pretrained(out).dtype == torch.bfloat16


@pytest.mark.slow
def test_push_to_hub_uploads_the_exported_directory(
    runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub

    calls: list[tuple[str, dict[str, Any]]] = []

    class FakeApi:
        def create_repo(self, repo_id: str, **kwargs: Any) -> None:
            calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))

        def upload_folder(self, **kwargs: Any) -> str:
            calls.append(("upload_folder", kwargs))
            assert (Path(kwargs["folder_path"]) / "config.json").is_file()  # exported first
            return "https://huggingface.co/me/tiny/commit/abc"

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    out = tmp_path / "pushed"
    args = ["export", str(runs["full"]), "--out", str(out), "--push-to-hub", "me/tiny", "--private"]
    assert main(args) == 0
    assert [name for name, _ in calls] == ["create_repo", "upload_folder"]
    assert calls[0][1] == {
        "repo_id": "me/tiny",
        "repo_type": "model",
        "private": True,
        "exist_ok": True,
    }
    assert calls[1][1]["repo_id"] == "me/tiny" and calls[1][1]["folder_path"] == str(out)


def test_export_refuses_a_non_empty_output_and_a_directory_without_checkpoints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "new")]) == 1
    assert "neither a checkpoint" in capsys.readouterr().err
    model_dir = resolve_model(TINY)
    assert main(["export", model_dir, "--out", str(taken)]) == 1
    assert "not empty" in capsys.readouterr().err
    assert (taken / "keep.txt").read_text() == "mine"


@pytest.mark.slow
@pytest.mark.parametrize("lora", [None, {"r": 2}], ids=["full", "lora"])
def test_a_lora_checkpoint_is_the_model_of_a_later_job(
    runs: dict[str, Path], tmp_path: Path, lora: dict[str, Any] | None
) -> None:
    spec = load_spec(_doc(model=str(runs["lora"]), lora=lora))
    start = load_run_model(spec, None, "cpu")
    # It starts from the first run's trained model: its base with the adapters merged in.
    torch.testing.assert_close(
        _logits(start), _logits(_trained(runs["lora"])), atol=1e-5, rtol=1e-5
    )
    trainable = [p for p in start.parameters() if p.requires_grad]
    total = list(start.parameters())
    assert 0 < len(trainable) < len(total) if lora else len(trainable) == len(total)
    result = run(spec, tmp_path / "second")
    assert result.status == "succeeded" and result.steps == 1
