"""What the loop asks of an objective: the contract every family of methods implements.

    collected = objective.collect(model, step, examples, first)   # the step's items, metrics
    for _ in range(objective.iterations):                  # optimizer updates on one batch
        loss, metrics, samples = objective.step(model, micro_batch)   # micro-batches of items,
                                                                      # weighted by units()
    objective.evaluate(model, max_examples)                 # held-out eval/* metrics

Offline objectives train on the sampled examples themselves (`Example`); the online one turns
them into scored groups of rollouts (`RolloutGroup`). Either item carries its token sequences,
which is all the loop reads of it (to count tokens).
"""

from __future__ import annotations

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
        self, model: torch.nn.Module, step: int, examples: list[Example], first: int = 0
    ) -> Collected[ItemT]:
        """The items `step` trains on, from the examples the sampler drew for it; `first`:
        the index of examples[0] in the step's whole batch (this rank's share starts there),
        so what is drawn per example does not depend on the rank."""
        ...

    def units(self, items: list[ItemT]) -> float:
        """What the step's loss is a mean over (tokens, sequences, pairs), counted."""
        ...

    def step(self, model: torch.nn.Module, items: list[ItemT]) -> StepResult:
        """The loss of one micro-batch, its metrics, and a few scored samples."""
        ...

    def evaluate(self, model: torch.nn.Module, max_examples: int) -> dict[str, float]:
        """eval/* metrics on up to `max_examples` held-out examples; {} without any."""
        ...
