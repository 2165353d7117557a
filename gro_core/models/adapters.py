"""LoRA checkpoints as models: a directory holding only adapters, and the base they belong to.

A LoRA run's checkpoint is peft's adapter directory (adapter_config.json and the adapter
weights) beside gro's trainer state. Used as a model (the `model:` of a later job, a reference,
`gro eval`), it is loaded as its base with the adapters merged in: a plain model, which a full
job trains whole and a LoRA job puts fresh adapters on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ADAPTER_CONFIG = "adapter_config.json"
TRAINER_STATE = "trainer.pt"  # gro_core.trainers.checkpoint's name, not imported (a cycle)


def is_adapter_dir(path: Path | str) -> bool:
    return (Path(path) / ADAPTER_CONFIG).is_file()


def checkpoint_spec(path: Path | str) -> dict[str, Any] | None:
    """The job spec stored in a gro checkpoint's trainer state; None for other directories."""
    state_file = Path(path) / TRAINER_STATE
    if not state_file.is_file():
        return None
    import torch

    # weights_only=False: the state holds RNG tuples and numpy arrays gro wrote itself.
    state = torch.load(state_file, map_location="cpu", weights_only=False)
    return state.get("spec")


def adapter_base(path: Path | str) -> str:
    """The model the adapters of `path` were trained on, as its job named it (`builtin:…`, a
    Hub id, a directory): the stored spec's `model`, else peft's base_model_name_or_path
    (which for a gro checkpoint is where the base was loaded from, e.g. a cache directory)."""
    spec = checkpoint_spec(path)
    if spec and spec.get("model"):
        return str(spec["model"])
    config = json.loads((Path(path) / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    base = config.get("base_model_name_or_path")
    if not base:
        raise ValueError(f"{path}: {ADAPTER_CONFIG} names no base model")
    return str(base)


def merge_adapters(base: Any, path: Path | str) -> Any:
    """`base` with the adapters of `path` merged into its weights (a plain transformers model)."""
    from peft import PeftModel

    merged = PeftModel.from_pretrained(base, str(path)).merge_and_unload()
    # peft froze the base for inference; a model loaded to train on trains all its weights.
    return merged.requires_grad_(True)
