"""The sharding strategy of a run with several processes (`resources.strategy`): a wrapper
around the one training loop, never a second trainer.

    ddp   every rank holds the whole model; Ranks.average_gradients all-reduces the gradients.
    fsdp  PyTorch's FSDP2: `fully_shard` on every transformer block, then on the root, so each
          rank holds ~1/N of the parameters, gradients and AdamW state (DTensor shards). FSDP
          all-gathers a block's parameters for its forward and backward and reduce-scatters
          its gradients (already averaged over ranks), so the loop must not average them again.

Under fsdp every forward is a collective: evaluation and checkpoints run on every rank (rank 0
alone reports and writes files), and the consolidated weights are gathered with
torch.distributed.checkpoint.state_dict's get_model_state_dict.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, fully_shard

from gro_core.spec import ResourcesSpec


def transformer_blocks(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The model's repeated blocks: modules of the classes transformers keeps whole when it
    splits a model over devices (`_no_split_modules`), found inside peft wrappers too."""
    names: set[str] = set()
    for module in model.modules():
        names |= set(getattr(module, "_no_split_modules", None) or [])
    blocks = [m for m in model.modules() if type(m).__name__ in names]
    if not blocks:
        raise ValueError(
            f"resources.strategy: fsdp found no transformer blocks in {type(model).__name__} "
            "(no _no_split_modules); use strategy: ddp"
        )
    return blocks


def shard_model(model: torch.nn.Module, resources: ResourcesSpec) -> torch.nn.Module:
    """Shard `model` in place with FSDP2: each block, then the root (embeddings, norm, head).
    Parameters keep the model's dtype in compute; gradients are reduced in float32."""
    dtype = next(model.parameters()).dtype
    options: dict[str, Any] = {
        "mp_policy": MixedPrecisionPolicy(param_dtype=dtype, reduce_dtype=torch.float32)
    }
    if resources.cpu_offload:
        options["offload_policy"] = CPUOffloadPolicy()
    for block in transformer_blocks(model):
        fully_shard(block, **options)
    fully_shard(model, **options)
    return model


def full_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The whole model's weights on CPU (rank 0 receives them; the others get {}). A
    collective: every rank calls it."""
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_model_state_dict(model, options=options)


def local_numel(tensors: list[torch.Tensor]) -> int:
    """Elements this rank holds of `tensors` (a DTensor's local shard, or the whole tensor)."""
    return sum(getattr(t, "_local_tensor", t).numel() for t in tensors)
