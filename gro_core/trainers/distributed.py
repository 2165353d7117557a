"""Data parallelism: the same loop in N processes under torchrun, gradients averaged.

Every rank draws the same step batch (the sampler is a pure function of seed and step),
trains on its equal share of it, and averages gradients before the optimizer step, so N
ranks with a global batch B take the same step as one process with B (up to float
summation order). Rank 0 alone evaluates, checkpoints and reports.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from gro_core.rollout.static_decode import sharded


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    device: str = "auto"  # what load_policy should use on this rank
    sharded: bool = False  # resources.strategy fsdp over several ranks (gro_core.trainers.strategy)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, items: list[Any]) -> list[Any]:
        """This rank's contiguous, equal share of a step's items."""
        if self.world == 1:
            return items
        if len(items) % self.world:
            raise ValueError(
                f"a step's {len(items)} items do not split evenly over {self.world} processes; "
                "make train.batch_size a multiple of the process count"
            )
        size = len(items) // self.world
        return items[self.rank * size : (self.rank + 1) * size]

    def average_gradients(self, params: list[torch.nn.Parameter]) -> None:
        """One all-reduce over all gradients, flattened, then divided by the world size.
        Under fsdp FSDP's reduce-scatter has averaged them already: nothing to do."""
        if self.world == 1 or self.sharded:
            return
        grads = [p.grad for p in params if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def average_metrics(self, metrics: dict[str, float], weight: float = 1.0) -> dict[str, float]:
        """The mean of each metric over ranks, each rank's value weighted by its `weight`
        (e.g. its share of the step's loss units). Every rank must pass the same names."""
        if self.world == 1 or not metrics:
            return metrics
        names = sorted(metrics)
        values = torch.tensor([metrics[n] * weight for n in names] + [weight], dtype=torch.float64)
        dist.all_reduce(values)
        means = values[:-1] / values[-1].clamp(min=1e-12)
        return dict(zip(names, means.tolist(), strict=True))

    def total(self, value: float) -> float:
        """The sum of `value` over all ranks."""
        if self.world == 1:
            return value
        return float(self.summed(torch.tensor([value], dtype=torch.float64)).item())

    def summed(self, values: Tensor) -> Tensor:
        """`values` summed elementwise over all ranks (a CPU tensor; a copy)."""
        if self.world == 1:
            return values
        out = values.detach().clone().cpu()
        dist.all_reduce(out)
        return out

    def agree(self, flag: bool) -> bool:
        """Rank 0's decision (e.g. stop), the same on every rank."""
        if self.world == 1:
            return flag
        value = torch.tensor([1 if flag else 0])
        dist.broadcast(value, src=0)
        return bool(value.item())

    def finish(self) -> None:
        """Wait for every rank (rank 0 may still be evaluating or saving), then leave the
        group: a rank that exits while its peers still hold connections aborts."""
        if self.world > 1 and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


def any_rank(model: torch.nn.Module, flag: bool) -> bool:
    """Whether `flag` holds on any rank of a sharded `model`, whose sampling and scoring every
    rank must join (a collective: every rank calls it at the same point); else this rank's."""
    if not sharded(model):
        return flag
    value = torch.tensor([int(flag)], device=next(model.parameters()).device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def init_ranks(strategy: str = "ddp") -> Ranks:
    """Join the process group torchrun set up (gloo on CPU, NCCL on GPUs), if any;
    `strategy` is resources.strategy (fsdp shards the model over the ranks)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Ranks()
    cuda = torch.cuda.is_available()
    if not dist.is_initialized():
        # NCCL for the GPU tensors; gloo beside it for the few small CPU tensors the loop
        # reduces (unit counts, metrics, moments), which NCCL alone refuses.
        dist.init_process_group("cpu:gloo,cuda:nccl" if cuda else "gloo")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if cuda:
        torch.cuda.set_device(local)
    device = f"cuda:{local}" if cuda else "cpu"
    return Ranks(dist.get_rank(), world, device, sharded=strategy == "fsdp")
