"""Group bookkeeping for a batch of completions, without Python loops.

Completions that answer the same prompt share a group id (a preference pair is a group of
two, an unpaired example a group of one). Every group statistic below is one scatter op, so
its cost is O(B) whatever the number or sizes of the groups.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Groups:
    """Dense group indices for B completions.

    index: (B,) long, values in [0, num); counts: (num,) members per group, same dtype as
    the values it will divide.
    """

    index: Tensor
    counts: Tensor
    num: int

    def sum(self, values: Tensor) -> Tensor:
        """Per-group sum of a (B,) tensor -> (num,)."""
        out = torch.zeros(self.num, dtype=values.dtype, device=values.device)
        return out.index_add(0, self.index, values)

    def mean(self, values: Tensor) -> Tensor:
        """Per-group mean of a (B,) tensor -> (num,)."""
        return self.sum(values) / self.counts.to(values.dtype)

    def members(self) -> Tensor:
        """(B,) size of the group each completion belongs to."""
        return self.counts[self.index]

    def all_equal(self, values: Tensor) -> Tensor:
        """(num,) bool: True where every member of the group has the same value."""
        hi = torch.full((self.num,), -torch.inf, dtype=values.dtype, device=values.device)
        lo = torch.full((self.num,), torch.inf, dtype=values.dtype, device=values.device)
        hi = hi.scatter_reduce(0, self.index, values, reduce="amax")
        lo = lo.scatter_reduce(0, self.index, values, reduce="amin")
        return hi == lo


def make_groups(group_ids: Tensor | None, batch_size: int, device: torch.device) -> Groups:
    """Turn arbitrary group ids (B,) into dense `Groups`.

    `group_ids=None` puts every completion in a group of its own (unpaired data).
    """
    if group_ids is None:
        index = torch.arange(batch_size, device=device)
        counts = torch.ones(batch_size, dtype=torch.long, device=device)
        return Groups(index=index, counts=counts, num=batch_size)
    _, index, counts = torch.unique(group_ids, return_inverse=True, return_counts=True)
    return Groups(index=index, counts=counts, num=int(counts.numel()))
