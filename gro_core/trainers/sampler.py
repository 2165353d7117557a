"""Length-bucketed batches whose order is a pure function of (seed, epoch, step).

Examples are shuffled, cut into buckets of `bucket` batches, sorted by length inside each
bucket (so a batch holds similar lengths and little padding), split into batches, and the
batches shuffled again. Nothing depends on what ran before, so a resumed run draws exactly
the batches the uninterrupted run would have.
"""

from __future__ import annotations

import torch


def epoch_batches(
    lengths: list[int], batch_size: int, seed: int, epoch: int, bucket: int = 32
) -> list[list[int]]:
    """Index batches of one epoch; the last may be smaller."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(len(lengths), generator=gen).tolist()
    span = batch_size * bucket
    batches: list[list[int]] = []
    for start in range(0, len(order), span):
        part = sorted(order[start : start + span], key=lambda i: lengths[i])
        batches += [part[j : j + batch_size] for j in range(0, len(part), batch_size)]
    shuffled = torch.randperm(len(batches), generator=gen).tolist()
    return [batches[i] for i in shuffled]


class StepSampler:
    """The batch of example indices for each optimizer step (1-based)."""

    def __init__(self, lengths: list[int], batch_size: int, seed: int) -> None:
        if not lengths:
            raise ValueError("the training set is empty")
        self.lengths, self.batch_size, self.seed = lengths, batch_size, seed
        self.per_epoch = -(-len(lengths) // batch_size)
        self._cache: tuple[int, list[list[int]]] | None = None

    def batch(self, step: int) -> list[int]:
        epoch, index = divmod(step - 1, self.per_epoch)
        if self._cache is None or self._cache[0] != epoch:
            self._cache = (epoch, epoch_batches(self.lengths, self.batch_size, self.seed, epoch))
        return self._cache[1][index]

    def epoch_of(self, step: int) -> int:
        return (step - 1) // self.per_epoch
