"""Each weight's value function G is the antiderivative of its weight, ∂G/∂d = w, for both
signs of A: what makes `value` the loss whose gradient the preset follows."""

from __future__ import annotations

import pytest
import torch

from gro_core.objective.components import WEIGHTS, _resolve
from gro_core.objective.config import GROConfig

WITH_VALUES = [name for name, w in WEIGHTS.items() if w.value_impl]


def _config(weight: str) -> GROConfig:
    anchor = "old" if WEIGHTS[weight].needs_ratio else "pair"
    return GROConfig(
        weight=weight, anchor=anchor, beta=1.7, margin=0.3, label_smoothing=0.15,
        delta=1.4 if weight == "clip" else None, discopop_tau=0.4, sapo_temperature_neg=2.5,
    )  # fmt: skip


def test_every_sequence_weight_but_one_has_a_value() -> None:
    assert set(WEIGHTS) - set(WITH_VALUES) == {"one", "cispo"}  # their loss is the surrogate


@pytest.mark.parametrize("weight", WITH_VALUES)
def test_the_value_is_the_antiderivative_of_the_weight(weight: str) -> None:
    cfg = _config(weight)
    gen = torch.Generator().manual_seed(0)
    d = (torch.randn(64, generator=gen, dtype=torch.float64) * 0.6).requires_grad_()
    sign = torch.where(torch.rand(64, generator=gen) < 0.5, -1.0, 1.0).double()
    value = _resolve(WEIGHTS[weight].value_impl)(d, sign, cfg)
    (slope,) = torch.autograd.grad(value.sum(), d)
    w = WEIGHTS[weight].function(d.detach(), sign, cfg)
    assert torch.allclose(slope, w, rtol=1e-12, atol=1e-12)
    assert w.abs().max() > 0
