"""The method registry: one record per method a job can name in `method:`.

A record says what data the method trains on, which objective trains it, its preset (the GRO
components, for every method but sft and reward_model) and its documented arguments. The job
spec, the trainers, the evaluation, `GET /v1/methods` and the dashboard all read it; adding a
method is one record (methods/online.py or offline.py) plus its preset function in
gro_core.objective.presets.

    get_method("dpo").kinds                   # frozenset({'preference'})
    get_preset("grpo", epsilon=0.28)          # its GROConfig, the method's arguments applied
    describe_methods()                        # what GET /v1/methods serves

Whether it runs online (samples rollouts) follows from the kinds: a method that accepts
`prompt` rows trains on rollouts of them. Facts about the objective (a reference model, group
comparisons) follow from the preset's components, so they hold for any method_args override.
Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gro_core.methods.offline import OFFLINE
from gro_core.methods.online import ONLINE
from gro_core.methods.record import Arg, Method, TrainsWith, registry
from gro_core.objective.config import GROConfig

__all__ = ["METHODS", "PRESETS", "Arg", "Method", "TrainsWith", "describe_methods"]
__all__ += ["get_method", "get_preset"]

METHODS: dict[str, Method] = registry(*OFFLINE, *ONLINE)
"""Every method, datasets' first (sft, reward_model, the preference family), then online."""


PRESETS: dict[str, Callable[..., dict[str, Any]]] = {
    name: m.preset for name, m in METHODS.items() if m.preset is not None
}
"""The methods trained by gro_loss, and their preset functions."""


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; one of: {', '.join(METHODS)}")
    return METHODS[name]


def get_preset(name: str, **overrides: Any) -> GROConfig:
    """The GROConfig of preset `name`, with the method's parameters or config fields overridden.

    Raises ValueError for an unknown preset, an unknown keyword, or a value the method or
    the objective does not accept.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    config = METHODS[name].config(**overrides)
    assert config is not None
    return config


def describe_methods() -> list[dict[str, Any]]:
    """Every method's record, JSON-able, in registry order."""
    return [m.describe() for m in METHODS.values()]
