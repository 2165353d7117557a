"""A checkpoint an fsdp run left as shards only, made loadable in one process.

An fsdp run gathers its whole weights into a save_pretrained directory only at its last
checkpoint (gro_core.trainers.strategy); every earlier one holds the shards each rank wrote
with torch.distributed.checkpoint, the tokenizer and the trainer state. That is enough to
resume, but not to load: a run that crashed, or a checkpoint a job names as its model, would
have no weights to export or evaluate. `consolidate` reads every rank's shards in this one
process (torch.distributed.checkpoint needs no process group to load) into the model the
spec describes, and writes its save_pretrained files beside the shards: full weights, or the
adapters of a LoRA run.

    if is_sharded_only(path):
        consolidate(path)          # path now also holds config.json + model.safetensors
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import get_model_state_dict, set_model_state_dict

from gro_core.models.adapters import ADAPTER_CONFIG, checkpoint_spec, is_adapter_dir

SHARDED_DIR = "sharded"
"""The subdirectory of a checkpoint holding the shards (gro_core.trainers.strategy)."""
# The files that make a directory loadable: written last, so a reader that sees one sees all.
_MARKERS = ("config.json", ADAPTER_CONFIG)


def is_sharded_only(path: Path | str) -> bool:
    """Whether `path` is a checkpoint holding shards but no save_pretrained files."""
    path = Path(path)
    loadable = (path / "config.json").is_file() or is_adapter_dir(path)
    return (path / SHARDED_DIR).is_dir() and not loadable


def consolidate(checkpoint: Path | str) -> Path:
    """Write `checkpoint`'s weights, gathered from its shards, as save_pretrained files into
    it (on the CPU, in the spec's dtype); returns the checkpoint. Two processes doing it at
    once write the same bytes: each writes into its own directory and renames files in."""
    from gro_core.models.run_model import load_run_model  # models.run_model imports this
    from gro_core.spec import load_spec

    checkpoint = Path(checkpoint)
    stored = checkpoint_spec(checkpoint)
    if stored is None:
        raise ValueError(f"{checkpoint}: sharded checkpoint without its trainer state")
    model = load_run_model(load_spec(stored), None, device="cpu")
    state = {"model": get_model_state_dict(model)}  # the names FSDP saved its shards under
    dcp.load(state, checkpoint_id=checkpoint / SHARDED_DIR, no_dist=True)
    set_model_state_dict(model, state["model"])
    tmp = checkpoint / f".consolidating-{uuid.uuid4().hex[:8]}"
    try:
        model.save_pretrained(tmp)  # a peft model writes its adapters only
        files = sorted(tmp.iterdir(), key=lambda f: f.name in _MARKERS)
        for file in files:
            file.replace(checkpoint / file.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return checkpoint


def loadable(path: Path | str) -> Path:
    """`path`, consolidated first when it is a checkpoint of shards only."""
    if is_sharded_only(path):
        consolidate(path)
    return Path(path)
