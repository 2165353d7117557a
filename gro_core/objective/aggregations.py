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
    """1/N: the mean over the N completions of each one's token sum."""
    return 1.0 / batch.size


def group_mean(batch: GROBatch, cfg: GROConfig) -> float | Tensor:
    """1/(number of groups): token sums added up, divided by the groups (DPO, CPL: pairs)."""
    return 1.0 / batch.groups.num


def group_mean_token_mean(batch: GROBatch, cfg: GROConfig) -> float | Tensor:
    """1/(number of groups · |y_i|): per-token means added up, divided by the groups; the
    chain rule of a per-token x (SimPO, IPO, length-normalised DPO)."""
    return 1.0 / (batch.lengths * batch.groups.num)


def seq_mean_token_mean(batch: GROBatch, cfg: GROConfig) -> float | Tensor:
    """1/(N·|y_i|): each completion's token mean, then the mean over completions."""
    return 1.0 / (batch.lengths * batch.size)


def token_mean(batch: GROBatch, cfg: GROConfig) -> float | Tensor:
    """1/Σ_i |y_i|: the mean over every completion token of the batch."""
    return 1.0 / batch.mask.sum().clamp(min=1).to(batch.maskf.dtype)


def seq_sum_norm(batch: GROBatch, cfg: GROConfig) -> float | Tensor:
    """1/(N·L), L = max_len: token sums over a constant, whatever the lengths (Dr. GRPO)."""
    return 1.0 / (batch.size * cfg.max_len)
