"""Rollout log-probs with shared prompts and length chunks: the same as one padded batch."""

from __future__ import annotations

import itertools
import random

import pytest
import torch

from gro_core.data.encode import Sequence, collate, completion_logprobs
from gro_core.models import load_policy
from gro_core.trainers import chunking
from gro_core.trainers.chunking import (
    SHARED_MAX_ROW,
    grouped_logprobs,
    length_chunks,
    overhead_tokens,
    shared_rows_cheaper,
)
from gro_core.trainers.prompt_sharing import scores_shared_rows

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


def mixed_batch(rng: random.Random) -> list[Sequence]:
    """Three prompts of different lengths with four completions each (1 to 12 tokens), and
    one prompt with a single completion, interleaved."""

    def tokens(n: int) -> tuple[int, ...]:
        return tuple(rng.randrange(4, 90) for _ in range(n))

    prompts = [tokens(n) for n in (2, 5, 9, 4)]
    return [
        Sequence(prompts[p], tokens(rng.choice([1, 2, 3, 12])), group=p)
        for p in (0, 0, 1, 2, 1, 2, 0, 1, 2, 2, 1, 0, 3)
    ]


# (overhead, share): several chunks, one chunk, shared-prompt rows
LAYOUTS = [(0, False), (1000, False), (1000, True)]


@pytest.mark.parametrize(("overhead", "share"), LAYOUTS)
def test_grouped_logprobs_and_gradients_equal_one_padded_batch(
    overhead: int, share: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = load_policy(TINY)
    seqs = mixed_batch(random.Random(0))
    batch = collate(seqs, pad_id=0)
    used = []
    for name in ("_shared_logprobs", "_chunked_logprobs"):
        real = getattr(chunking, name)
        monkeypatch.setattr(chunking, name, lambda *a, f=real, n=name: used.append(n) or f(*a))

    def grads(logprobs: torch.Tensor) -> list[torch.Tensor]:
        model.zero_grad()
        (logprobs * torch.linspace(-1, 1, logprobs.numel()).view_as(logprobs)).sum().backward()
        return [p.grad.clone() for p in model.parameters()]

    whole = completion_logprobs(model, batch)
    grouped, mask = grouped_logprobs(model, seqs, 0, overhead, share=share)
    assert used == ["_shared_logprobs" if share else "_chunked_logprobs"]
    assert torch.equal(mask, batch.mask)
    assert grouped.shape == whole.shape
    assert torch.allclose(grouped, whole, atol=1e-5)
    assert not grouped[~mask].any()
    for a, b in zip(grads(grouped), grads(completion_logprobs(model, batch)), strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_shared_rows_are_chosen_when_they_compute_less_and_stay_short() -> None:
    # Two prompts of 10 tokens, four completions each; groups list longest first.
    prompts, groups = [10, 10], [[0, 1, 2, 3], [4, 5, 6, 7]]
    short = [4, 4, 3, 3, 4, 4, 3, 3]
    # Rows of 10 + 14 tokens in one forward: 48 + 50 vs a prompt forward and one chunk,
    # 20 + 50 + 8 × 4 + 50.
    assert shared_rows_cheaper(prompts, groups, short, length_chunks(short, 50), 50)
    # Without overheads, slots padded to long completions cost more than chunks of equal
    # length: 2 × (10 + 30 + 30 + 30 + 1) vs 20 + 4 × 1 + 4 × 30 ...
    tail = [30, 1, 1, 1, 30, 30, 30, 1]
    assert not shared_rows_cheaper(prompts, groups, tail, length_chunks(tail, 0), 0)
    # ... and a row longer than SHARED_MAX_ROW is never used, whatever the overhead.
    long = [SHARED_MAX_ROW, 1, 1, 1, 1, 1, 1, 1]
    assert not shared_rows_cheaper(prompts, groups, long, length_chunks(long, 10**6), 10**6)


def test_the_shared_row_check_runs_on_the_model_itself() -> None:
    model, seqs = load_policy(TINY), mixed_batch(random.Random(1))
    groups = [tuple(s for s in seqs if s.group == g) for g in range(4)]
    assert scores_shared_rows(model, groups, 0)
    model.config._attn_implementation = "flash_attention_2"  # no custom 4D masks there
    assert not scores_shared_rows(model, groups, 0)
