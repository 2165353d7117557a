"""The scored examples a step reports: samples.jsonl records (docs/jobspec.md)."""

from __future__ import annotations

from typing import Any

from gro_core.objective.loss import GROOutput


def scored_samples(
    entries: list[tuple[Any, Any, float]], out: GROOutput, limit: int
) -> list[dict[str, Any]]:
    """samples.jsonl records for the first `limit` (prompt, completion, reward) entries, with
    the GRO quantities gro_loss gave each: `out`'s (B,) advantages, anchor distances, weights."""
    return [
        {
            "prompt": prompt,
            "completion": completion,
            "reward": reward,
            "advantage": float(out.advantages[i]),
            "anchor_distance": float(out.anchor_distances[i]),
            "weight": float(out.weights[i]),
        }
        for i, (prompt, completion, reward) in enumerate(entries[:limit])
    ]
