"""A checkpoint as a plain model directory others load with transformers or peft.

    export_checkpoint("runs/a/checkpoints/step-40", "exported/a")                 # as trained
    export_checkpoint("runs/a", "exported/a", merge_lora=True, dtype="bfloat16")  # newest one

The output is `save_pretrained` output and the tokenizer, nothing of the trainer (no
optimizer, RNG or spec). A full-weights checkpoint is written as its model; a LoRA one either
as its adapters, whose `base_model_name_or_path` is the base its job named (a Hub id or a
directory, not the cache path gro loaded it from; `builtin:<name>` for a builtin, which only
gro loads), or with `merge_lora` as the base with the adapters merged in.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

from gro_core.models.adapters import (
    ADAPTER_CONFIG,
    TRAINER_STATE,
    adapter_base,
    checkpoint_spec,
    is_adapter_dir,
)
from gro_core.models.loading import load_policy, load_reward_model, load_tokenizer, pick_dtype
from gro_core.models.run_model import consolidate
from gro_core.models.sharded import is_sharded_only


def find_checkpoint(path: Path | str) -> Path:
    """`path` itself when it is a model or adapter directory; for a run directory, its newest
    checkpoint. ValueError when it is neither."""
    path = Path(path)
    if (path / "config.json").is_file() or is_adapter_dir(path) or is_sharded_only(path):
        return path
    steps = sorted(
        (int(p.name.split("-")[1]), p)
        for p in (path / "checkpoints").glob("step-*")
        if p.name.split("-")[1].isdigit() and (p / TRAINER_STATE).is_file()
    )
    if not steps:
        raise ValueError(
            f"{path}: neither a checkpoint (config.json or {ADAPTER_CONFIG}) nor a "
            "run directory with checkpoints/step-N"
        )
    return steps[-1][1]


def _is_reward_model(spec: dict[str, Any] | None) -> bool:
    return bool(spec) and spec.get("method") == "reward_model"


def _load_full(checkpoint: Path, dtype: str, spec: dict[str, Any] | None) -> Any:
    if _is_reward_model(spec):
        return load_reward_model(checkpoint, dtype=dtype, device="cpu")
    return load_policy(checkpoint, dtype=dtype, device="cpu")  # merges a LoRA checkpoint's


def _save_adapters(checkpoint: Path, dtype: str, target: Path) -> None:
    """The adapters as they are (in `dtype`), naming the base the job named."""
    from peft import PeftModel

    base_name = adapter_base(checkpoint)
    base = load_policy(base_name, dtype=dtype, device="cpu")
    model = PeftModel.from_pretrained(base, str(checkpoint))
    model.to(pick_dtype(dtype, "cpu"))
    model.save_pretrained(target)
    config_file = target / ADAPTER_CONFIG
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = base_name
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def export_checkpoint(
    checkpoint: Path | str,
    out: Path | str,
    *,
    merge_lora: bool = False,
    dtype: str = "auto",
) -> Path:
    """Write `checkpoint` (or a run directory's newest) to `out` as a plain model directory in
    `dtype` (auto: as loaded on a CPU, float32); `out` must not exist or be empty. Written
    beside `out` and renamed into place, so a failed export leaves nothing half-written."""
    source, out = find_checkpoint(checkpoint), Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out} exists and is not empty: export to a new directory")
    pick_dtype(dtype, "cpu")  # ValueError naming the dtypes before anything loads
    spec = checkpoint_spec(source)
    if is_sharded_only(source):  # an fsdp run's earlier checkpoints: gathered first
        consolidate(source)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        if is_adapter_dir(source) and not merge_lora:
            _save_adapters(source, dtype, tmp)
        else:
            _load_full(source, dtype, spec).save_pretrained(tmp)
        load_tokenizer(source).save_pretrained(tmp)
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def push_to_hub(folder: Path | str, repo_id: str, *, private: bool = False) -> str:
    """Upload an exported directory to the Hugging Face Hub as model repo `repo_id` (created
    when missing); the token is the environment's (HF_TOKEN or `hf auth login`). Returns the
    commit's URL."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    commit = api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="model")
    return str(getattr(commit, "commit_url", commit))


__all__ = ["export_checkpoint", "find_checkpoint", "push_to_hub"]
