"""Estimators that normalise over the whole batch give one step's gradient however the step is
cut: a batch split into micro-batches (or ranks' shares), each given the step's summed
`gro_moments`, accumulates exactly the gradient of the batch in one piece."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from gro_core.methods import get_preset
from gro_core.objective.config import GROConfig
from gro_core.objective.loss import gro_loss, gro_moments, moment_stages
from tests.gro_core.test_presets import RandomBatch, grad_of, random_batch

_SIZES = [4, 4, 4, 4, 4, 4]  # six groups, cut into three micro-batches of two groups


def _configs() -> dict[str, GROConfig]:
    grpo_batch = dataclasses.replace(get_preset("grpo"), adv_scale="batch")
    return {
        "grpo-batch-scale": grpo_batch,
        "reinforce_pp": get_preset("reinforce_pp"),
        "reinforce_pp-baseline": get_preset("reinforce_pp", baseline=True),
        "rloo-normalized": get_preset("rloo", normalize_advantages=True),
        "grpo-batch-scale-normalized": dataclasses.replace(grpo_batch, adv_normalize=True),
    }


def _kwargs(b: RandomBatch, rows: torch.Tensor) -> dict:
    return dict(
        logprobs=b.logprobs[rows],
        mask=b.mask[rows],
        rewards=b.rewards[rows],
        group_ids=b.group_ids[rows],
        old_logprobs=b.old[rows],
        ref_logprobs=b.ref[rows],
    )


def _units(cfg: GROConfig, kwargs: dict) -> float:
    units = cfg.component("aggregation").units
    if units == "tokens":
        return float(kwargs["mask"].sum())
    if units == "groups":
        return float(kwargs["group_ids"].unique().numel())
    return float(kwargs["mask"].shape[0])


def _micro_batches(b: RandomBatch, parts: int) -> list[torch.Tensor]:
    """Row indices of `parts` micro-batches, whole groups each (as the trainers cut them)."""
    groups = b.group_ids.unique()
    return [torch.isin(b.group_ids, chunk).nonzero().squeeze(1) for chunk in groups.chunk(parts)]


def _step_moments(cfg: GROConfig, micro: list[dict]) -> torch.Tensor:
    known = None
    for _ in range(moment_stages(cfg)):
        known = sum(gro_moments(cfg, moments=known, **kw) for kw in micro)
    assert known is not None
    return known


@pytest.mark.parametrize("name", list(_configs()))
def test_micro_batches_with_the_steps_moments_give_the_whole_batchs_gradient(name: str) -> None:
    cfg = _configs()[name]
    b = random_batch(_SIZES, seed=3)
    whole = grad_of(gro_loss(cfg, **_kwargs(b, torch.arange(len(b.rewards)))).loss, b)
    parts = _micro_batches(b, 3)
    total = sum(_units(cfg, _kwargs(b, rows)) for rows in parts)
    moments = _step_moments(cfg, [_kwargs(b, rows) for rows in parts])

    def accumulated(moments: torch.Tensor | None) -> torch.Tensor:
        losses = [
            gro_loss(cfg, **kw, moments=moments).loss * _units(cfg, kw) / total
            for kw in (_kwargs(b, rows) for rows in parts)
        ]
        return grad_of(sum(losses), b)

    torch.testing.assert_close(accumulated(moments), whole, rtol=1e-9, atol=1e-12)
    # Without them each micro-batch normalises by its own statistics: another step.
    assert (accumulated(None) - whole).abs().max() > 1e-3 * whole.abs().max()


def test_configs_without_a_batch_statistic_need_no_moments() -> None:
    assert moment_stages(get_preset("grpo")) == 0
    assert moment_stages(get_preset("rloo")) == 0
    assert moment_stages(get_preset("dpo")) == 0
    assert moment_stages(_configs()["grpo-batch-scale-normalized"]) == 2


def test_a_step_of_one_completion_keeps_its_advantage_at_zero() -> None:
    cfg = _configs()["grpo-batch-scale"]
    b = random_batch([1], seed=0)
    kw = _kwargs(b, torch.arange(1))
    out = gro_loss(cfg, **kw, moments=_step_moments(cfg, [kw]))
    assert float(out.stats["adv/mean"]) == 0.0  # rather than NaN from a 0/0 std
    assert torch.isfinite(out.loss)
