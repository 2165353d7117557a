"""The model a run trains, as its job spec describes it: at the start, or at a checkpoint.

    model = load_run_model(spec, None)                      # the spec's starting model
    model = load_run_model(spec, Path("runs/a/checkpoints/step-40"))

A full-weights checkpoint is a model directory like any other; a LoRA checkpoint holds only
the adapters, so the base model of the spec is loaded first and the adapters put into it.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import torch
import torch.distributed.checkpoint as dcp
from peft import set_peft_model_state_dict
from safetensors.torch import load_file
from torch.distributed.checkpoint.state_dict import get_model_state_dict, set_model_state_dict

from gro_core.methods import get_method
from gro_core.models.adapters import ADAPTER_CONFIG, checkpoint_spec
from gro_core.models.loading import LoraSettings, load_policy, load_reward_model
from gro_core.models.sharded import SHARDED_DIR, is_sharded_only
from gro_core.spec import JobSpec, load_spec

ADAPTER_FILE = "adapter_model.safetensors"
# The files that make a directory loadable: written last, so a reader that sees one sees all.
_MARKERS = ("config.json", ADAPTER_CONFIG)


def load_run_model(spec: JobSpec, checkpoint: Path | None, device: str = "auto") -> torch.nn.Module:
    """The spec's starting model (checkpoint None), or the run's weights at `checkpoint`:
    a causal LM for methods that generate, a scalar-head classifier for a reward model."""
    options = spec.model_options
    # An fsdp run's earlier checkpoints hold shards only: the one asked for, or the one a job
    # starts from (its model and reference are then that checkpoint's directory).
    for path in (checkpoint, spec.model, spec.reference_model):
        if path is not None and is_sharded_only(path):
            consolidate(path)
    if not get_method(spec.method).generates:
        return load_reward_model(
            checkpoint or spec.model, device=device, dtype=options.dtype, dropout=options.dropout
        )
    lora = LoraSettings(**spec.lora.model_dump()) if spec.lora else None
    loading = {
        "device": device,
        "dtype": options.dtype,
        "attention": options.attention,
        "gradient_checkpointing": options.gradient_checkpointing,
        "dropout": options.dropout,
    }
    if checkpoint is not None and lora is None:
        return load_policy(checkpoint, **loading)  # a full checkpoint: a model like any
    model = load_policy(spec.model, lora=lora, **loading)
    if checkpoint is not None:  # LoRA: the base, then the saved adapters
        set_peft_model_state_dict(model, load_file(checkpoint / ADAPTER_FILE))
    return model


def consolidate(checkpoint: Path | str) -> Path:
    """Write `checkpoint`'s weights, gathered from the shards of an fsdp run, as
    save_pretrained files into it (on the CPU, in the spec's dtype): the shards of every rank
    are read in this one process. Two processes doing it at once write the same bytes: each
    writes into its own directory and renames the files in, the loadable marker last."""
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
        for file in sorted(tmp.iterdir(), key=lambda f: f.name in _MARKERS):
            file.replace(checkpoint / file.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return checkpoint
