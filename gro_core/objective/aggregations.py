"""Aggregations: the normaliser each completion's token sum is multiplied by (records in
components.py). A float when it is the same for every completion (one multiply on the scalar
loss), else a (B,) tensor."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor

from gro_core.objective.batch import GROBatch

if TYPE_CHECKING:
    from gro_core.objective.config import GROConfig


def seq_mean(batch: GROBatch, cfg: GROConfig) -> float | Tensor:
    """Σ_i Σ_t / N."""
    return 1.0 / batch.size


def group_mean(batch: GROBatch, cfg: GROConfig) -> float | Tensor:
    """Σ_i Σ_t / number of groups (DPO and CPL: mean over pairs)."""
    return 1.0 / batch.groups.num


def seq_mean_token_mean(batch: GROBatch, cfg: GROConfig) -> float | Tensor:
    """mean over i of Σ_t / |y_i|."""
    return 1.0 / (batch.lengths * batch.size)


def token_mean(batch: GROBatch, cfg: GROConfig) -> float | Tensor:
    """Σ_i Σ_t / Σ_i |y_i|."""
    return 1.0 / batch.mask.sum().clamp(min=1).to(batch.maskf.dtype)


def seq_sum_norm(batch: GROBatch, cfg: GROConfig) -> float | Tensor:
    """Σ_i Σ_t / (N · L), L a fixed length (Dr. GRPO)."""
    return 1.0 / (batch.size * cfg.max_len)
