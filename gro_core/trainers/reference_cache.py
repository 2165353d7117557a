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

from gro_core.data.encode import Example, collate, completion_logprobs
from gro_core.trainers.prompt_sharing import collate_shared, shareable, shares_prompts

# Padded tokens per no-grad batch: activations, not logits (never held), set the peak.
REFERENCE_BATCH_TOKENS = 8192


def token_batches(examples: list[Example], tokens: int) -> list[list[Example]]:
    """Consecutive runs of `examples` whose rows × longest row stay within `tokens`."""
    batches: list[list[Example]] = []
    rows = longest = 0
    for example in examples:
        grown_rows, grown = rows + len(example.sequences), max(longest, example.length)
        if batches and grown_rows * grown <= tokens:
            batches[-1].append(example)
            rows, longest = grown_rows, grown
        else:
            batches.append([example])
            rows, longest = len(example.sequences), example.length
    return batches


class ReferenceCache:
    """Per-token reference log-probs of every completion of the train and eval examples.

    Each split is one flat tensor of log-probs and, per example index, where each of its
    sequences' tokens start in it and how many there are: two tensors to save and load
    instead of one per sequence.
    """

    def __init__(
        self, values: dict[str, Tensor], spans: dict[str, Tensor], fingerprint: str = ""
    ) -> None:
        self.values = values  # split -> (tokens,) log-probs
        self.spans = spans  # split -> (examples, sequences, 2) long: start, length
        # Python lists for the per-step lookups (a tensor element read costs a microsecond).
        self._spans = {split: t.tolist() for split, t in spans.items()}
        self.fingerprint = fingerprint  # of the examples it was computed for

    @classmethod
    @torch.no_grad()
    def compute(
        cls,
        model: torch.nn.Module,
        splits: dict[str, list[Example]],
        pad_id: int,
        device: torch.device,
        batch_tokens: int = REFERENCE_BATCH_TOKENS,
        share: bool | None = None,
    ) -> ReferenceCache:
        """Score every split with `model`, in batches of at most `batch_tokens` padded
        tokens (one example at least); `share`: whether it scores shared-prompt rows right
        (`shares_prompts`), None to check here."""
        was_training = model.training
        if share is None:
            share = shares_prompts(model, next(iter(splits.values()), []), pad_id)
        model.eval()
        values, spans = {}, {}
        for split, examples in splits.items():
            width = max((len(e.sequences) for e in examples), default=0)
            rows = max((e.index for e in examples), default=-1) + 1  # indexes are keys
            where = [[[0, 0]] * width for _ in range(rows)]
            parts, filled = [], 0
            # Sorted by length so each no-grad batch carries little padding.
            ordered = sorted(examples, key=lambda e: e.length)
            for chunk in token_batches(ordered, batch_tokens):
                groups = [e.sequences for e in chunk]
                if share and shareable(groups):
                    batch = collate_shared(groups, pad_id).to(device)
                else:
                    batch = collate([s for g in groups for s in g], pad_id).to(device)
                # Row-major: sequence after sequence, each one's tokens in order.
                parts.append(completion_logprobs(model, batch)[batch.mask].float().cpu())
                for example in chunk:
                    for j, seq in enumerate(example.sequences):
                        where[example.index][j] = [filled, len(seq.completion_ids)]
                        filled += len(seq.completion_ids)
            values[split] = torch.cat(parts) if parts else torch.zeros(0)
            spans[split] = torch.tensor(where, dtype=torch.long).view(rows, width, 2)
        model.train(was_training)
        return cls(values, spans, fingerprint(splits))

    def batch(self, split: str, examples: list[Example], width: int) -> Tensor:
        """(B, width) right-aligned reference log-probs of the examples' sequences."""
        values, spans = self.values[split], self._spans[split]
        nowhere = len(values)  # the appended zero that padding reads
        index = []
        for example in examples:
            for start, length in spans[example.index][: len(example.sequences)]:
                index.append([nowhere] * (width - length) + list(range(start, start + length)))
        return torch.cat([values, values.new_zeros(1)])[torch.tensor(index)]

    def save(self, path: Path) -> None:
        # A unique temporary name: data-parallel ranks may all save the same cache.
        tmp = Path(path).with_suffix(f".tmp-{os.getpid()}")
        state = {"fingerprint": self.fingerprint, "values": self.values, "spans": self.spans}
        torch.save(state, tmp)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> ReferenceCache:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if "values" not in saved:  # written by an older gro: compute it again
            return cls({}, {}, "")
        return cls(saved["values"], saved["spans"], saved["fingerprint"])


def fingerprint(splits: dict[str, list[Example]]) -> str:
    """A hash of every token of every split: a cache made for other data is not reused."""
    digest = hashlib.blake2b(digest_size=16)
    for split, examples in sorted(splits.items()):
        digest.update(split.encode())
        for example in examples:
            for seq in example.sequences:
                digest.update(repr((seq.prompt_ids, seq.completion_ids)).encode())
    return digest.hexdigest()
