"""What an online step draws beyond the sampler's prompts: the offline rows of
`data.offline_mix` and dynamic sampling's extra prompts. Each draw is seeded by (seed, step),
so a resumed run redraws it, and is laid out over the step's whole batch, so the ranks that
split a step draw what one process does."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gro_core.data.encode import Example


@dataclass(frozen=True)
class Share:
    """One rank's part of a step of `total` places: `size` places from `first` on."""

    first: int
    size: int
    total: int


def _picks(pool: list[Example], n: int, seed: int) -> list[Example]:
    if n == 0:
        return []
    gen = torch.Generator().manual_seed(seed)
    return [pool[i] for i in torch.randint(len(pool), (n,), generator=gen).tolist()]


def offline_places(
    offline: list[Example], mix: float, seed: int, step: int, share: Share
) -> tuple[int, list[Example], int]:
    """(how many of the share's prompts sample online, the share's offline rows, the index
    of its first demonstration among the step's). The step's last round(mix × total) places
    hold offline rows drawn once for the whole step; each share takes the places it spans."""
    n_offline = round(mix * share.total) if offline else 0
    start = share.total - n_offline  # where the offline places begin
    drawn = _picks(offline, n_offline, seed * 1_000_003 + step)
    lo, hi = max(share.first - start, 0), max(share.first + share.size - start, 0)
    demo_first = sum(1 for e in drawn[:lo] if len(e.sequences) == 1)
    return max(min(start - share.first, share.size), 0), drawn[lo:hi], demo_first


def extra_prompts(
    train: list[Example], n: int, seed: int, step: int, round_: int, first: int
) -> list[Example]:
    """n prompts of data.train for a dynamic-sampling round, seeded by (seed, step, round)
    and by where this rank's share starts (`first`), so ranks, each refilling its own share,
    do not all draw the same prompts."""
    seed = (seed * 1_000_003 + step) * 101 + round_
    if first:  # one process (or rank 0) keeps the seeds it always had
        seed = seed * 1_000_033 + first
    return _picks(train, n, seed)
