"""The evaluation's metrics themselves: pure functions of counts and token ids (no torch).

Diversity (distinct-n, pairwise similarity) watches for the distribution collapse that reward
maximisation drives: G samples of one prompt becoming the same completion. It works on token
ids, so it means the same for any tokenizer.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence as Seq

__all__ = [
    "bigram_jaccard",
    "distinct_n",
    "diversity_metrics",
    "mean",
    "pairwise_similarity",
    "pass_at_k",
]


def mean(values: Seq[float]) -> float:
    return sum(values) / len(values)


def pass_at_k(n: int, c: int, k: int) -> float:
    """P(at least one of k samples drawn without replacement from n is correct), c of n correct.

    The unbiased estimator 1 − C(n−c, k) / C(n, k) (Chen et al., 2021), exact in integers.
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n; got n={n}, c={c}, k={k}")
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def _ngrams(ids: Seq[int], n: int) -> list[tuple[int, ...]]:
    return [tuple(ids[i : i + n]) for i in range(len(ids) - n + 1)]


def distinct_n(completions: Seq[Seq[int]], n: int) -> float:
    """Unique n-grams / all n-grams over `completions` (token id lists); 0.0 when there are none."""
    grams = [g for ids in completions for g in _ngrams(ids, n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def bigram_jaccard(a: Seq[int], b: Seq[int]) -> float:
    """|A ∩ B| / |A ∪ B| of the two sequences' token-bigram sets, O(len a + len b).

    A sequence shorter than two tokens stands for itself as one gram, so two equal short
    sequences (two empty ones included) score 1.0 and unequal ones 0.0.
    """
    grams_a = set(_ngrams(a, 2)) or {tuple(a)}
    grams_b = set(_ngrams(b, 2)) or {tuple(b)}
    return len(grams_a & grams_b) / len(grams_a | grams_b)


def pairwise_similarity(completions: Seq[Seq[int]]) -> float:
    """Mean bigram Jaccard over the G(G−1)/2 pairs of one prompt's G completions: O(G² · L).

    1.0 when all are the same (collapse), near 0 when they share no bigram; needs G ≥ 2.
    """
    pairs = list(itertools.combinations(completions, 2))
    if not pairs:
        raise ValueError("pairwise similarity needs at least two completions")
    return sum(bigram_jaccard(a, b) for a, b in pairs) / len(pairs)


def diversity_metrics(completions: list[list[int]], g: int, eos: int | None) -> dict[str, float]:
    """eval/distinct_1, _2 over all (P·G,) prompt-major completions, and with g ≥ 2 the mean
    over prompts of their G samples' pairwise similarity."""
    # The final eos is the same in every finished completion: it says nothing about diversity.
    content = [c[:-1] if c and eos is not None and c[-1] == eos else c for c in completions]
    metrics = {"eval/distinct_1": distinct_n(content, 1), "eval/distinct_2": distinct_n(content, 2)}
    if g >= 2:
        groups = [content[i : i + g] for i in range(0, len(content), g)]
        metrics["eval/pairwise_similarity"] = mean([pairwise_similarity(x) for x in groups])
    return metrics
