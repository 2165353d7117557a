"""The model a run trains, as its job spec describes it: at the start, or at a checkpoint.

    model = load_run_model(spec, None)                      # the spec's starting model
    model = load_run_model(spec, Path("runs/a/checkpoints/step-40"))

A full-weights checkpoint is a model directory like any other; a LoRA checkpoint holds only
the adapters, so the base model of the spec is loaded first and the adapters put into it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from peft import set_peft_model_state_dict
from safetensors.torch import load_file

from gro_core.methods import get_method
from gro_core.models.loading import LoraSettings, load_policy, load_reward_model
from gro_core.models.sharded import loadable
from gro_core.spec import JobSpec

ADAPTER_FILE = "adapter_model.safetensors"


def load_run_model(spec: JobSpec, checkpoint: Path | None, device: str = "auto") -> torch.nn.Module:
    """The spec's starting model (checkpoint None), or the run's weights at `checkpoint`:
    a causal LM for methods that generate, a scalar-head classifier for a reward model."""
    options = spec.model_options
    if checkpoint is not None:  # one of an fsdp run's checkpoints that hold shards only
        checkpoint = loadable(checkpoint)
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
