"""What the loop asks of an objective: the contract every family of methods implements.

    collected = objective.collect(model, step, examples, first, total)  # items, metrics
    for _ in range(objective.iterations):                  # optimizer updates on one batch
        moments = objective.step_moments(model, micro_batches, all_ranks_sum)  # or None
        loss, metrics, samples = objective.step(model, micro_batch, moments)  # micro-batches
                                                                      # of items, by units()
    objective.evaluate(model, max_examples)                 # held-out eval/* metrics

Offline objectives train on the sampled examples themselves (`Example`); the online one turns
them into scored groups of rollouts (`RolloutGroup`). Either item carries its token sequences,
which is all the loop reads of it (to count tokens).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence as Seq
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import torch
from torch import Tensor

from gro_core.data.encode import Example, Sequence

Metrics = dict[str, Tensor | float]
"""A step's metrics: tensors (fetched by the loop in one transfer) or plain floats."""
StepResult = tuple[Tensor, Metrics, list[dict[str, Any]]]
"""(loss with grad, metrics, samples.jsonl records) of one micro-batch."""


class Item(Protocol):
    """What one step trains on, one of a batch: its sequences go through the model together."""

    @property
    def sequences(self) -> Seq[Sequence]: ...


ItemT = TypeVar("ItemT", bound=Item)


@dataclass
class Collected(Generic[ItemT]):
    """What `collect` gives the loop for one step."""

    items: list[ItemT]
    """The step's batch on this rank, cut into micro-batches by the loop."""
    samples: int
    """Examples trained on, for `train/samples`: a completion (online), a dataset row, a
    preference pair once."""
    metrics: dict[str, float] = field(default_factory=dict)
    """Measured while collecting (rollout time, rewards per function): logged with the step's."""


class Objective(Protocol[ItemT]):
    """A family of methods' loss, as the loop drives it."""

    iterations: int
    """Optimizer updates per collected batch: 1 offline, `train.num_iterations` online."""

    def collect(
        self,
        model: torch.nn.Module,
        step: int,
        examples: list[Example],
        first: int = 0,
        total: int | None = None,
    ) -> Collected[ItemT]:
        """The items `step` trains on, from the examples the sampler drew for it; `first`:
        the index of examples[0] in the step's whole batch of `total` (None: these
        examples are all of it), so what is drawn per example does not depend on the rank."""
        ...

    def units(self, items: list[ItemT]) -> float:
        """What the step's loss is a mean over (tokens, sequences, pairs), counted."""
        ...

    def step_moments(
        self, model: torch.nn.Module, micro: list[list[ItemT]], total: Callable[[Tensor], Tensor]
    ) -> Tensor | None:
        """What the loss normalises over the whole step (gro_core.objective.loss.gro_moments),
        summed over the step's micro-batches and, by `total`, over ranks; None when nothing."""
        ...

    def step(
        self, model: torch.nn.Module, items: list[ItemT], moments: Tensor | None = None
    ) -> StepResult:
        """The loss of one micro-batch, its metrics, and a few scored samples; `moments`: the
        step's, from step_moments, when the batch is one of several micro-batches or ranks."""
        ...

    def evaluate(self, model: torch.nn.Module, max_examples: int) -> dict[str, float]:
        """eval/* metrics on up to `max_examples` held-out examples; {} without any."""
        ...


def weighted_metrics(parts: list[tuple[dict[str, Any], float]]) -> dict[str, float]:
    """Σ weight · value per metric name over micro-batches' (metrics, weight).

    Values are floats or tensors; all tensors are fetched in one transfer (one host sync
    on a GPU, and on a CPU one conversion instead of one per metric and micro-batch).
    """
    tensors = [
        v.detach().float().reshape(())
        for metrics, _ in parts
        for v in metrics.values()
        if isinstance(v, torch.Tensor)
    ]
    fetched = iter(torch.stack(tensors).tolist() if tensors else [])
    sums: dict[str, float] = {}
    for metrics, weight in parts:
        for name, value in metrics.items():
            value = next(fetched) if isinstance(value, torch.Tensor) else float(value)
            sums[name] = sums.get(name, 0.0) + value * weight
    return sums
