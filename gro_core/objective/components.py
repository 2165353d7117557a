"""The registry of GRO's components: one record per named part of the objective.

    ∇J = E_i[ w(d_i) · f(A_i) · ∇ℓ_i ],   d_i = x_i − sg(anchor_i),   aggregated by Agg

Each record names its function (in advantages.py, transforms.py, anchors.py, weights.py or
aggregations.py) and states the facts the rest of gro reads instead of keeping its own lists:
whether it works per token, the group sizes it needs, whether it compares the completions of one
group, whether it reads the reference model. This module imports nothing heavy, so a job spec
is validated (in the API process, say) without importing torch; a record's function is imported
on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["advantage", "transform", "x", "anchor", "weight", "aggregation"]
Units = Literal["sequences", "groups", "tokens"]


@dataclass(frozen=True)
class Component:
    """One named component and what it needs; `function` is its implementation."""

    kind: Kind
    name: str
    impl: str
    """`module:function` inside gro_core.objective."""
    token_level: bool = False
    """Its values vary per token, so the loss takes its (B, T) form."""
    min_group: int = 1
    """Fewest completions a group must have."""
    exact_group: int | None = None
    """The only group size it accepts (a preference pair: 2)."""
    compares_in_group: bool = False
    """It compares the completions of one group, so a group of one carries no signal."""
    reads_x: bool = False
    """Anchors: it measures x (so needs a sequence-level sign, and x's reference if any)."""
    needs_reference: bool = False
    """x, anchors: measuring it reads the reference model's log-probs."""
    kl_needs_reference: bool = False
    """Advantages: a kl_coef > 0 enters it through the reference (REINFORCE++'s k1 return)."""
    needs_baseline_rewards: bool = False
    """Advantages: it needs the reward of each prompt's greedy completion (ReMax)."""
    requires: Mapping[str, str] = field(default_factory=dict)
    """Other config fields it needs set to a value, e.g. {"anchor": "old"}."""
    units: Units = "sequences"
    """Aggregations: what the loss is a mean over, counted to weight micro-batches."""
    is_ratio: bool = False
    """Anchors: d is the log importance ratio log π_θ/π_old (per token or per completion)."""
    needs_ratio: bool = False
    """Weights: it reads d as a log importance ratio, so needs an anchor with is_ratio."""
    value_impl: str = ""
    """Weights: `module:function` of G(d, s) with ∂G/∂d = w, so the method's loss is
    −Agg(f(A)·G(d, s)); empty when the method's loss is the surrogate itself."""
    value_terms: Literal["", "each", "chosen"] = ""
    """Anchors: whose G makes the loss value: every completion's ("each"), only the chosen
    member's, which is the pair's term ("chosen"); empty: the value is the surrogate."""

    @property
    def function(self) -> Callable[..., Any]:
        return _resolve(self.impl)

    @property
    def doc(self) -> str:
        """The first paragraph of the function's docstring (imports the implementation)."""
        return (self.function.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")


_functions: dict[str, Callable[..., Any]] = {}


def _resolve(impl: str) -> Callable[..., Any]:
    if impl not in _functions:
        module, name = impl.split(":")
        _functions[impl] = getattr(importlib.import_module(f"gro_core.objective.{module}"), name)
    return _functions[impl]


def _registry(*records: Component) -> dict[str, Component]:
    return {r.name: r for r in records}


ADVANTAGES = _registry(
    Component("advantage", "raw", "advantages:raw"),
    Component("advantage", "rloo", "advantages:rloo", min_group=2, compares_in_group=True),
    Component("advantage", "group_norm", "advantages:group_norm", compares_in_group=True),
    Component("advantage", "remax", "advantages:remax", needs_baseline_rewards=True),
    Component(
        "advantage",
        "reinforce_pp",
        "advantages:reinforce_pp",
        token_level=True,
        kl_needs_reference=True,
    ),
)
ADV_SCALES = ("group", "batch", "none")
"""group_norm's divisor: the group's reward std, the batch's, or none (Dr. GRPO)."""

TRANSFORMS = _registry(
    Component("transform", "identity", "transforms:f_identity"),
    Component("transform", "exp", "transforms:f_exp"),
)

X_KINDS = _registry(
    Component("x", "log_ratio", "anchors:x_log_ratio", needs_reference=True),
    Component("x", "log_likelihood", "anchors:x_log_likelihood"),
)

ANCHORS = _registry(
    Component("anchor", "none", "anchors:anchor_none"),
    Component("anchor", "zero", "anchors:anchor_zero", reads_x=True, value_terms="each"),
    Component(
        "anchor",
        "pair",
        "anchors:anchor_pair",
        exact_group=2,
        compares_in_group=True,
        reads_x=True,
        value_terms="chosen",
    ),
    Component(
        "anchor",
        "pair_sorted",
        "anchors:anchor_pair_sorted",
        exact_group=2,
        compares_in_group=True,
        reads_x=True,
        needs_reference=True,
        requires={"x": "log_likelihood"},
        value_terms="chosen",
    ),
    Component(
        "anchor", "group_mean", "anchors:anchor_group_mean", compares_in_group=True, reads_x=True
    ),
    Component(
        "anchor", "opposite", "anchors:anchor_opposite", compares_in_group=True, reads_x=True
    ),
    Component(
        "anchor",
        "kl_point",
        "anchors:anchor_kl_point",
        reads_x=True,
        requires={"x": "log_ratio"},
        value_terms="each",
    ),
    Component(
        "anchor", "old", "anchors:anchor_old", token_level=True, is_ratio=True, value_terms="each"
    ),
    Component("anchor", "old_seq", "anchors:anchor_old_seq", is_ratio=True, value_terms="each"),
)

WEIGHTS = _registry(
    Component("weight", "one", "weights:weight_one"),
    Component("weight", "sigmoid", "weights:weight_sigmoid", value_impl="weights:value_sigmoid"),
    Component("weight", "robust", "weights:weight_robust", value_impl="weights:value_robust"),
    Component(
        "weight",
        "sigmoid_slope",
        "weights:weight_sigmoid_slope",
        value_impl="weights:value_sigmoid_slope",
    ),
    Component("weight", "linear", "weights:weight_linear", value_impl="weights:value_linear"),
    Component("weight", "step", "weights:weight_step", value_impl="weights:value_step"),
    Component("weight", "nca", "weights:weight_nca", value_impl="weights:value_nca"),
    Component("weight", "exo", "weights:weight_exo", value_impl="weights:value_exo"),
    Component("weight", "discopop", "weights:weight_discopop", value_impl="weights:value_discopop"),
    Component(
        "weight",
        "clip",
        "ratio_weights:weight_clip",
        needs_ratio=True,
        value_impl="ratio_weights:value_clip",
    ),
    Component("weight", "cispo", "ratio_weights:weight_cispo", needs_ratio=True),
    Component(
        "weight",
        "sapo",
        "ratio_weights:weight_sapo",
        needs_ratio=True,
        value_impl="ratio_weights:value_sapo",
    ),
)

AGGREGATIONS = _registry(
    Component("aggregation", "seq_mean", "aggregations:seq_mean"),
    Component("aggregation", "group_mean", "aggregations:group_mean", units="groups"),
    Component(
        "aggregation",
        "group_mean_token_mean",
        "aggregations:group_mean_token_mean",
        units="groups",
    ),
    Component("aggregation", "seq_mean_token_mean", "aggregations:seq_mean_token_mean"),
    Component("aggregation", "token_mean", "aggregations:token_mean", units="tokens"),
    Component("aggregation", "seq_sum_norm", "aggregations:seq_sum_norm"),
)

REGISTRIES: dict[str, dict[str, Component]] = {
    "advantage": ADVANTAGES,
    "f": TRANSFORMS,
    "x": X_KINDS,
    "anchor": ANCHORS,
    "weight": WEIGHTS,
    "aggregation": AGGREGATIONS,
}
"""Each GROConfig field that names a component, and the registry it names one from."""
