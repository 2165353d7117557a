"""Checkpoints: written atomically, the last K kept, everything a bit-identical resume needs.

    DIR/checkpoints/step-N/            a save_pretrained model (and tokenizer) directory
    DIR/checkpoints/step-N/trainer.pt  optimizer, scheduler, RNG states, step, the job spec,
                                       and the run's clock and sample count at that step

A checkpoint is built in a temporary sibling directory and renamed into place, so a crash
mid-write leaves the previous checkpoint intact and never a half-written one.
"""

from __future__ import annotations

import random
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch

TRAINER_STATE = "trainer.pt"
_STEP_DIR = re.compile(r"^step-(\d+)$")


def write_text_atomically(path: Path, text: str) -> None:
    """Replace `path` by `text` in one rename: a reader never sees half a file."""
    tmp = Path(path).with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def checkpoint_dirs(out_dir: Path) -> list[tuple[int, Path]]:
    """(step, path) of every complete checkpoint under out_dir, oldest first."""
    root = Path(out_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = _STEP_DIR.match(path.name)
        if match and (path / TRAINER_STATE).is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(out_dir: Path) -> tuple[int, Path] | None:
    found = checkpoint_dirs(out_dir)
    return found[-1] if found else None


def rng_state() -> dict[str, Any]:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def weights_finite(params: list[torch.Tensor]) -> bool:
    """Whether every value of `params` is finite, in one host sync."""
    if not params:
        return True
    with torch.no_grad():
        # A DTensor (fsdp) is checked on this rank's shard: its own values.
        local = [getattr(p, "_local_tensor", p) for p in params]
        return bool(torch.stack([torch.isfinite(p).all() for p in local]).all())


def save_checkpoint(
    out_dir: Path,
    step: int,
    model: torch.nn.Module,
    tokenizer: Any,
    trainer_state: dict[str, Any],
    keep: int,
) -> Path:
    """Write DIR/checkpoints/step-N atomically, then delete all but the newest `keep`.
    (fsdp's sharded checkpoints: gro_core.trainers.strategy.save_sharded_checkpoint.)"""
    root = Path(out_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step}"
    tmp = root / f".step-{step}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        model.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        torch.save({**trainer_state, "rng": rng_state()}, tmp / TRAINER_STATE)
        if final.exists():  # a rerun of the same step replaces the old copy
            shutil.rmtree(final)
        tmp.rename(final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    for _, old in checkpoint_dirs(out_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_trainer_state(path: Path) -> dict[str, Any]:
    # weights_only=False: the state holds RNG tuples and numpy arrays written by us.
    return torch.load(Path(path) / TRAINER_STATE, map_location="cpu", weights_only=False)
