"""GROConfig: one frozen dataclass naming the components of the objective.

A preset (gro_core.presets) is just a GROConfig with chosen fields. Every field is checked
when the config is built, so an unknown component or an impossible value fails before a
single step runs, with a message that says how to fix it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from gro_core.advantages import ADV_SCALES, ADVANTAGES, TOKEN_LEVEL_ADVANTAGES
from gro_core.components import (
    AGGREGATIONS,
    ANCHORS,
    TOKEN_LEVEL_ANCHORS,
    TRANSFORMS,
    WEIGHTS,
    X_KINDS,
)

# Anchors that compare completions within a group, and so need a sequence-level sign.
_GROUP_ANCHORS = frozenset({"pair", "group_mean", "opposite"})


@dataclass(frozen=True)
class GROConfig:
    """The GRO objective's components (GRO_SPEC.md). Defaults are the GRO preset."""

    name: str = "custom"
    """Display name, usually the preset's."""
    advantage: str = "rloo"
    """raw | rloo | group_norm | remax | reinforce_pp."""
    adv_scale: str = "group"
    """group_norm's divisor: group std, batch std, or none (Dr. GRPO)."""
    adv_baseline: bool = False
    """reinforce_pp: subtract the group mean reward before the return (REINFORCE++-baseline)."""
    kl_coef: float = 0.0
    """Strength of every KL term this config uses (in reward, in the return, or in the loss)."""
    kl_in_reward: bool = False
    """RLOO style: r ← r − kl_coef · Σ_t (old − ref) before advantages."""
    kl_in_loss: bool = False
    """GRPO style: add kl_coef · Agg(k3(ref, logprobs)) to the loss."""
    f: str = "identity"
    """identity (scale · A · side weight) or exp (min(exp(A/τ), max_weight))."""
    f_scale: float = 1.0
    pos_weight: float = 1.0
    """Multiplies f for A ≥ 0 (KTO's desirable weight)."""
    neg_weight: float = 1.0
    """Multiplies f for A < 0 (KTO's undesirable weight, CPL's λ)."""
    tau: float = 1.0
    """exp transform temperature."""
    max_weight: float = 20.0
    """exp transform cap, so one outlier cannot dominate a batch."""
    anchor: str = "opposite"
    """none | pair | group_mean | opposite | kl_point | old."""
    x: str = "log_likelihood"
    """log_ratio (Δ = ℓ − ℓ_ref) or log_likelihood (ℓ): what d measures."""
    x_token_mean: bool = True
    """Divide x by the completion length (per-token mean)."""
    x_neg_scale: float = 1.0
    """Scale x of completions with A < 0 (CPL's λ on the rejected member)."""
    weight: str = "sigmoid"
    """one | sigmoid | sigmoid_slope | clip."""
    beta: float = 1.0
    """Sharpness of the sigmoid weights."""
    epsilon_low: float = 0.2
    epsilon_high: float = 0.2
    """clip weight: the trust region [1 − ε_low, 1 + ε_high] of the importance ratio."""
    aggregation: str = "seq_mean"
    """seq_mean | group_mean | seq_mean_token_mean | token_mean | seq_sum_norm."""
    max_len: int = 1024
    """L of seq_sum_norm."""

    def __post_init__(self) -> None:
        _check_names(self)
        _check_values(self)
        _check_combinations(self)

    @property
    def token_level(self) -> bool:
        """True when w or A varies per token, so the loss needs the (B, T) form."""
        return self.advantage in TOKEN_LEVEL_ADVANTAGES or self.anchor in TOKEN_LEVEL_ANCHORS

    @property
    def needs_reference(self) -> bool:
        """Whether `gro_loss` must get `ref_logprobs`: trainers skip the reference otherwise."""
        uses_kl = self.kl_coef > 0 and (
            self.kl_in_reward or self.kl_in_loss or self.advantage == "reinforce_pp"
        )
        measures_ratio = self.x == "log_ratio" and self.anchor not in ("none", "old")
        return uses_kl or measures_ratio

    @property
    def needs_baseline_rewards(self) -> bool:
        """ReMax needs the reward of a greedy completion per prompt."""
        return self.advantage == "remax"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


def _one_of(value: str, options: Any, field: str) -> None:
    if value not in options:
        choices = ", ".join(sorted(options))
        raise ValueError(f"unknown {field} {value!r}; choose one of: {choices}")


def _check_names(cfg: GROConfig) -> None:
    _one_of(cfg.advantage, ADVANTAGES, "advantage")
    _one_of(cfg.adv_scale, ADV_SCALES, "adv_scale")
    _one_of(cfg.f, TRANSFORMS, "f")
    _one_of(cfg.anchor, ANCHORS, "anchor")
    _one_of(cfg.x, X_KINDS, "x")
    _one_of(cfg.weight, WEIGHTS, "weight")
    _one_of(cfg.aggregation, AGGREGATIONS, "aggregation")


def _positive(cfg: GROConfig, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value}")


def _check_values(cfg: GROConfig) -> None:
    if not cfg.beta >= 0:
        raise ValueError(f"beta must be >= 0, got {cfg.beta}; typical values are 0.1 to 1")
    if not cfg.kl_coef >= 0:
        raise ValueError(f"kl_coef must be >= 0, got {cfg.kl_coef}; use 0 to turn KL off")
    for name in ("epsilon_low", "epsilon_high"):
        eps = getattr(cfg, name)
        if not 0 < eps < 1:
            raise ValueError(f"{name} must be in (0, 1), got {eps}; the usual value is 0.2")
    # f must stay monotone increasing in A, so every scale on it is positive.
    _positive(cfg, "f_scale", "pos_weight", "neg_weight", "tau", "max_weight", "x_neg_scale")
    _positive(cfg, "max_len")


def _check_combinations(cfg: GROConfig) -> None:
    if cfg.weight == "clip" and cfg.anchor != "old":
        raise ValueError("weight 'clip' clips the importance ratio: it needs anchor='old'")
    if cfg.advantage in TOKEN_LEVEL_ADVANTAGES and cfg.anchor in _GROUP_ANCHORS | {"kl_point"}:
        raise ValueError(
            f"advantage {cfg.advantage!r} is per token, but anchor {cfg.anchor!r} compares "
            "whole completions; use anchor='old' or 'none'"
        )
    if cfg.anchor == "kl_point" and cfg.x != "log_ratio":
        raise ValueError(
            "anchor 'kl_point' measures the log-ratio to the reference: set x='log_ratio'"
        )
