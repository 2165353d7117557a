"""Rollout log-probs with shared prompts and length chunks: the same as one padded batch."""

from __future__ import annotations

import itertools
import random

import pytest
import torch

from gro_core.models import load_policy
from gro_core.trainers.chunking import grouped_logprobs, length_chunks, overhead_tokens
from gro_core.trainers.encode import Sequence, collate, completion_logprobs

TINY = "builtin:tiny-llama"


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRO_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "gro-cache"))


def brute_force_cost(lengths: list[int], overhead: int) -> int:
    """The cheapest split of the sorted lengths into contiguous chunks, trying every split."""
    ordered = sorted(lengths)
    n, best = len(ordered), None
    for cuts in itertools.product((False, True), repeat=n - 1):
        bounds = [0] + [i + 1 for i, c in enumerate(cuts) if c] + [n]
        cost = sum((b - a) * ordered[b - 1] + overhead for a, b in itertools.pairwise(bounds))
        best = cost if best is None else min(best, cost)
    return best


def padded_cost(chunks: list[list[int]], lengths: list[int], overhead: int) -> int:
    return sum(len(c) * max(lengths[i] for i in c) + overhead for c in chunks)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("overhead", [0, 5, 50])
def test_chunks_cover_every_index_once_at_the_least_padded_cost(seed: int, overhead: int) -> None:
    rng = random.Random(seed)
    lengths = [rng.choice([5, 6, 9, 30]) for _ in range(9)]
    chunks = length_chunks(lengths, overhead)
    assert sorted(i for c in chunks for i in c) == list(range(len(lengths)))
    assert padded_cost(chunks, lengths, overhead) == brute_force_cost(lengths, overhead)


def test_no_overhead_means_no_padding_and_a_large_one_means_one_batch() -> None:
    lengths = [3, 9, 3, 9, 4]
    assert all(len({lengths[i] for i in c}) == 1 for c in length_chunks(lengths, 0))
    assert len(length_chunks(lengths, 1000)) == 1


def test_overhead_in_tokens_shrinks_with_the_model_unless_there_is_a_backward() -> None:
    tiny, big = load_policy(TINY), torch.nn.Linear(4000, 4000)
    assert overhead_tokens(tiny, backward=False) > overhead_tokens(big, backward=False) == 8
    assert overhead_tokens(tiny, backward=True) == overhead_tokens(big, backward=True)


@pytest.mark.parametrize("overhead", [0, 1000])  # several chunks, one chunk
def test_grouped_logprobs_and_gradients_equal_one_padded_batch(overhead: int) -> None:
    model = load_policy(TINY)
    rng = random.Random(0)

    def tokens(n: int) -> tuple[int, ...]:
        return tuple(rng.randrange(4, 90) for _ in range(n))

    # Three prompts of different lengths with four completions each (1 to 12 tokens), and
    # one prompt with a single completion.
    prompts = [tokens(n) for n in (2, 5, 9, 4)]
    seqs = [
        Sequence(prompts[p], tokens(rng.choice([1, 2, 3, 12])), group=p)
        for p in (0, 0, 1, 2, 1, 2, 0, 1, 2, 2, 1, 0, 3)
    ]
    batch = collate(seqs, pad_id=0)

    def grads(logprobs: torch.Tensor) -> list[torch.Tensor]:
        model.zero_grad()
        (logprobs * torch.linspace(-1, 1, logprobs.numel()).view_as(logprobs)).sum().backward()
        return [p.grad.clone() for p in model.parameters()]

    whole = completion_logprobs(model, batch)
    grouped, mask = grouped_logprobs(model, seqs, 0, overhead)
    assert torch.equal(mask, batch.mask)
    assert grouped.shape == whole.shape
    assert torch.allclose(grouped, whole, atol=1e-5)
    assert not grouped[~mask].any()
    for a, b in zip(grads(grouped), grads(completion_logprobs(model, batch)), strict=True):
        assert torch.allclose(a, b, atol=1e-5)
