"""Reference log-probs, computed once before training and then looked up.

Offline methods see the same examples every epoch, and the reference never changes, so
its log-probs are computed in one no-grad pass up front (as TRL's
`precompute_ref_log_probs`, but always on) and the reference model is released. The cache
is saved beside the run, so a resumed run uses exactly the same numbers.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from torch import Tensor

from gro_core.trainers.encode import (
    Example,
    collate,
    collate_shared,
    completion_logprobs,
    right_align,
    shareable,
    shares_prompts,
    unpad_rows,
)

# split -> example index -> one (len(completion),) tensor per sequence of the example
Store = dict[str, dict[int, list[Tensor]]]


class ReferenceCache:
    """Per-token reference log-probs of every completion of the train and eval examples."""

    def __init__(self, store: Store, fingerprint: str = "") -> None:
        self.store = store
        self.fingerprint = fingerprint  # of the examples it was computed for

    @classmethod
    @torch.no_grad()
    def compute(
        cls,
        model: torch.nn.Module,
        splits: dict[str, list[Example]],
        pad_id: int,
        device: torch.device,
        batch_size: int = 32,
    ) -> ReferenceCache:
        was_training = model.training
        share = shares_prompts(model, next(iter(splits.values()), []), pad_id)
        model.eval()
        store: Store = {}
        for split, examples in splits.items():
            store[split] = {}
            # Sorted by length so each no-grad batch carries little padding.
            ordered = sorted(examples, key=lambda e: e.length)
            for start in range(0, len(ordered), batch_size):
                chunk = ordered[start : start + batch_size]
                groups = [e.sequences for e in chunk]
                if share and shareable(groups):
                    batch = collate_shared(groups, pad_id).to(device)
                else:
                    batch = collate([s for g in groups for s in g], pad_id).to(device)
                rows = iter(unpad_rows(completion_logprobs(model, batch), batch.mask))
                for example in chunk:
                    store[split][example.index] = [next(rows) for _ in example.sequences]
        model.train(was_training)
        return cls(store, fingerprint(splits))

    def batch(self, split: str, examples: list[Example], width: int) -> Tensor:
        """(B, width) right-aligned reference log-probs of the examples' sequences."""
        return right_align([t for e in examples for t in self.store[split][e.index]], width)

    def save(self, path: Path) -> None:
        # A unique temporary name: data-parallel ranks may all save the same cache.
        tmp = Path(path).with_suffix(f".tmp-{os.getpid()}")
        torch.save({"fingerprint": self.fingerprint, "store": self.store}, tmp)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> ReferenceCache:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        return cls(saved["store"], saved["fingerprint"])


def fingerprint(splits: dict[str, list[Example]]) -> str:
    """A hash of every token of every split: a cache made for other data is not reused."""
    digest = hashlib.blake2b(digest_size=16)
    for split, examples in sorted(splits.items()):
        digest.update(split.encode())
        for example in examples:
            for seq in example.sequences:
                digest.update(repr((seq.prompt_ids, seq.completion_ids)).encode())
    return digest.hexdigest()
