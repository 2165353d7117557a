"""The sharding strategy of a run with several processes (`resources.strategy`): a wrapper
around the one training loop, never a second trainer.

    ddp   every rank holds the whole model; Ranks.average_gradients all-reduces the gradients.
    fsdp  PyTorch's FSDP2: `fully_shard` on every transformer block, then on the root, so each
          rank holds ~1/N of the parameters, gradients and AdamW state (DTensor shards). FSDP
          all-gathers a block's parameters for its forward and backward and reduce-scatters
          its gradients (already averaged over ranks), so the loop must not average them again.

Under fsdp every forward is a collective: evaluation and checkpoints run on every rank (rank 0
alone reports). A checkpoint is sharded: every rank writes its own shards of the weights and of
the AdamW state with torch.distributed.checkpoint (no rank gathers the whole model), plus its
RNG state; rank 0 adds the trainer state. Only the run's last checkpoint also gathers the
consolidated weights (get_model_state_dict) into a save_pretrained directory.

    DIR/checkpoints/step-N/sharded/      torch.distributed.checkpoint: model and optimizer
    DIR/checkpoints/step-N/rng-rank-R.pt each rank's RNG states
    DIR/checkpoints/step-N/trainer.pt    scheduler, step, spec, clock, samples (rank 0, last)
    DIR/checkpoints/step-N/model.*       save_pretrained weights (the run's last checkpoint)
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_state_dict,
)
from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, fully_shard

from gro_core.models import Reference
from gro_core.models.sharded import SHARDED_DIR
from gro_core.spec import ResourcesSpec
from gro_core.trainers.checkpoint import TRAINER_STATE, checkpoint_dirs, rng_state


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


def shard_run(model: torch.nn.Module, objective: object, resources: ResourcesSpec) -> None:
    """Shard the policy and, where the objective holds one, its separate frozen reference
    (online methods' KL reference without LoRA): each rank then holds ~1/N of both, and the
    reference's forwards are collectives like the policy's. With LoRA the reference is the
    policy itself (adapters off), sharded with it."""
    shard_model(model, resources)
    reference = getattr(objective, "reference", None)  # offline: cached log-probs, no model
    frozen = reference.copy if isinstance(reference, Reference) else None
    if frozen is not None:
        shard_model(frozen, resources)


def full_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The whole model's weights on CPU (rank 0 receives them; the others get {}). A
    collective: every rank calls it."""
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_model_state_dict(model, options=options)


def local_numel(tensors: list[torch.Tensor]) -> int:
    """Elements this rank holds of `tensors` (a DTensor's local shard, or the whole tensor)."""
    return sum(getattr(t, "_local_tensor", t).numel() for t in tensors)


def rng_file(checkpoint: Path, rank: int) -> Path:
    return Path(checkpoint) / f"rng-rank-{rank}.pt"


def save_sharded_checkpoint(
    out_dir: Path,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    tokenizer: Any,
    trainer_state: dict[str, Any],
    keep: int,
    consolidate: bool,
) -> Path:
    """Write DIR/checkpoints/step-N from every rank (a collective), atomically: all ranks
    write into one temporary directory, and rank 0 renames it once all have finished.
    `consolidate`: also gather the whole weights into a save_pretrained directory."""
    rank = dist.get_rank()
    root = Path(out_dir) / "checkpoints"
    final = root / f"step-{step}"
    # One name all ranks agree on without talking; a crashed attempt's leftover is replaced.
    tmp = root / f".step-{step}.tmp-sharded"
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    dist.barrier()
    model_state, optim_state = get_state_dict(model, optimizer)
    dcp.save({"model": model_state, "optim": optim_state}, checkpoint_id=tmp / SHARDED_DIR)
    torch.save(rng_state(), rng_file(tmp, rank))
    weights = full_state_dict(model) if consolidate else None
    dist.barrier()  # every rank's files are written
    if rank == 0:
        if weights is not None:
            model.save_pretrained(tmp, state_dict=weights)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        torch.save(trainer_state, tmp / TRAINER_STATE)  # last: it marks the checkpoint complete
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        for _, old in checkpoint_dirs(out_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def load_sharded_checkpoint(
    checkpoint: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer
) -> dict[str, Any]:
    """Load this rank's shards of the weights and AdamW state saved at `checkpoint` into the
    sharded `model` and `optimizer` (a collective); returns this rank's RNG states."""
    saved, world = len(list(Path(checkpoint).glob("rng-rank-*.pt"))), dist.get_world_size()
    if saved != world:  # every rank sees the same count: all refuse, none waits on a peer
        raise ValueError(
            f"{checkpoint} was saved by {saved} fsdp processes; resume it with "
            f"resources.nproc_per_node x nnodes = {saved}, not {world}"
        )
    model_state, optim_state = get_state_dict(model, optimizer)
    state = {"model": model_state, "optim": optim_state}
    dcp.load(state, checkpoint_id=Path(checkpoint) / SHARDED_DIR)
    set_state_dict(
        model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"]
    )
    # weights_only=False: RNG tuples and numpy arrays written by us.
    return torch.load(rng_file(checkpoint, dist.get_rank()), weights_only=False)
