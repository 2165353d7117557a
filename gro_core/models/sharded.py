"""A checkpoint an fsdp run left as shards only, made loadable in one process.

An fsdp run gathers its whole weights into a save_pretrained directory only at its last
checkpoint (gro_core.trainers.strategy); every earlier one holds the shards each rank wrote
with torch.distributed.checkpoint, the tokenizer and the trainer state. That is enough to
resume, but not to load: a run that crashed, or a checkpoint a job names as its model, would
have no weights to export or evaluate. gro_core.models.run_model.consolidate reads every
rank's shards in one process into the model the spec describes and writes its save_pretrained
files beside them: full weights, or the adapters of a LoRA run.
"""

from __future__ import annotations

from pathlib import Path

from gro_core.models.adapters import is_adapter_dir

SHARDED_DIR = "sharded"
"""The subdirectory of a checkpoint holding the shards (gro_core.trainers.strategy)."""


def is_sharded_only(path: Path | str) -> bool:
    """Whether `path` is a checkpoint holding shards but no save_pretrained files."""
    path = Path(path)
    loadable = (path / "config.json").is_file() or is_adapter_dir(path)
    return (path / SHARDED_DIR).is_dir() and not loadable
