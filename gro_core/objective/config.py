"""GROConfig: one frozen dataclass naming the components of the objective.

A preset (gro_core.objective.presets) is just a GROConfig with chosen fields. Every field is checked
when the config is built, so an unknown component or an impossible value fails before a
single step runs, with a message that says how to fix it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from gro_core.objective.components import ADV_SCALES, ADVANTAGES, ANCHORS, REGISTRIES, Component


@dataclass(frozen=True)
class GROConfig:
    """The GRO objective's components (docs/objective.md). Defaults are the GRO preset."""

    name: str = "custom"
    """Display name, usually the preset's."""
    advantage: str = "rloo"
    """raw | rloo | group_norm | remax | reinforce_pp."""
    adv_scale: str = "group"
    """group_norm's divisor: group std, batch std, or none (Dr. GRPO)."""
    adv_normalize: bool = False
    """Whiten the advantages over the batch: (A − mean)/(std + 1e-4) (RLOO's option)."""
    adv_baseline: bool = False
    """reinforce_pp: subtract the group mean reward before the return (REINFORCE++-baseline)."""
    kl_coef: float = 0.0
    """Strength of every KL term this config uses (in reward, in the return, or in the loss)."""
    kl_in_reward: bool = False
    """RLOO style: r ← r − kl_coef · Σ_t (old − ref) before advantages."""
    kl_in_loss: bool = False
    """GRPO style: add kl_coef · Agg(k3(ref, logprobs)) to the loss."""
    kl_bias_correction: bool = False
    """Multiply the k3 term by the importance ratio ρ (with its gradient): the unbiased
    reverse-KL gradient off-policy (DeepSeek-V3.2; TRL's use_bias_correction_kl)."""
    nll_coef: float = 0.0
    """Add nll_coef · the mean NLL of the chosen (A > 0) completions' tokens (CPO's α)."""
    f: str = "identity"
    """identity (scale · A · side weight) or exp (min(exp(A/τ), max_weight))."""
    f_scale: float = 1.0
    """Scale of the identity transform (DPO's β, CPL's α)."""
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
    """How w depends on d (see the weight table)."""
    beta: float = 1.0
    """Sharpness of the sigmoid weights."""
    margin: float = 0.0
    """Target margin γ of the sequence-level weights: they read u = s·d − margin."""
    label_smoothing: float = 0.0
    """ε of the sigmoid, robust, exo weights: the assumed rate of flipped labels."""
    discopop_tau: float = 0.05
    """Temperature of DiscoPOP's mixing gate."""
    epsilon_low: float = 0.2
    """clip weight: ε_low, how far below 1 the ratio may go for A < 0."""
    epsilon_high: float = 0.2
    """clip weight: ε_high, how far above 1 the ratio may go for A > 0; cispo: the cap of ρ."""
    delta: float | None = None
    """clip weight: two-sided clipping, w = 0 where ρ > δ whatever the sign (INTELLECT-2)."""
    sapo_temperature_pos: float = 1.0
    """sapo weight: gate temperature for A > 0."""
    sapo_temperature_neg: float = 1.05
    """sapo weight: gate temperature for A ≤ 0."""
    aggregation: str = "seq_mean"
    """What the loss is a mean over (see the aggregation table)."""
    max_len: int = 1024
    """L of seq_sum_norm."""

    def __post_init__(self) -> None:
        _check_names(self)
        _check_values(self)
        _check_combinations(self)

    def component(self, field: str) -> Component:
        """The registry record of the component a field names, e.g. component("anchor")."""
        return REGISTRIES[field][getattr(self, field)]

    @property
    def components(self) -> list[Component]:
        return [self.component(field) for field in REGISTRIES]

    @property
    def token_level(self) -> bool:
        """True when w or A varies per token, so the loss needs the (B, T) form."""
        return any(c.token_level for c in (self.component("advantage"), self.component("anchor")))

    @property
    def needs_reference(self) -> bool:
        """Whether `gro_loss` must get `ref_logprobs`: trainers skip the reference otherwise."""
        advantage = self.component("advantage")
        uses_kl = self.kl_coef > 0 and (
            self.kl_in_reward or self.kl_in_loss or advantage.kl_needs_reference
        )
        anchor = self.component("anchor")
        measures_x = anchor.reads_x and self.component("x").needs_reference
        return uses_kl or measures_x or anchor.needs_reference

    @property
    def needs_baseline_rewards(self) -> bool:
        """ReMax needs the reward of a greedy completion per prompt."""
        return self.component("advantage").needs_baseline_rewards

    @property
    def compares_in_group(self) -> bool:
        """Whether the objective compares the completions of one group (prompt): then a group
        of one carries no signal, and unpaired examples of a batch form one group."""
        return self.component("advantage").compares_in_group

    @property
    def min_group(self) -> int:
        """Fewest completions per group the components accept."""
        return max(c.min_group for c in self.components)

    @property
    def exact_group(self) -> int | None:
        """The one group size the components accept, if any (a preference pair: 2)."""
        return next((c.exact_group for c in self.components if c.exact_group), None)

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
    for field, registry in REGISTRIES.items():
        _one_of(getattr(cfg, field), registry, field)
    _one_of(cfg.adv_scale, ADV_SCALES, "adv_scale")


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
    if not 0 < cfg.epsilon_low < 1:
        raise ValueError(f"epsilon_low must be in (0, 1), got {cfg.epsilon_low}; usually 0.2")
    if not cfg.epsilon_high > 0:
        raise ValueError(f"epsilon_high must be > 0, got {cfg.epsilon_high}; usually 0.2")
    if cfg.delta is not None and not cfg.delta > 1:
        raise ValueError(f"delta must be > 1 (above 1 + epsilon_high), got {cfg.delta}")
    if not 0 <= cfg.label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must be in [0, 0.5), got {cfg.label_smoothing}")
    if cfg.weight == "exo" and not cfg.label_smoothing > 0:
        raise ValueError("weight 'exo' needs label_smoothing > 0 (its target [1−ε, ε]); try 1e-3")
    if not cfg.nll_coef >= 0:
        raise ValueError(f"nll_coef must be >= 0, got {cfg.nll_coef}")
    # f must stay monotone increasing in A, so every scale on it is positive.
    _positive(cfg, "f_scale", "pos_weight", "neg_weight", "tau", "max_weight", "x_neg_scale")
    _positive(cfg, "max_len", "discopop_tau", "sapo_temperature_pos", "sapo_temperature_neg")


def _check_combinations(cfg: GROConfig) -> None:
    for component in cfg.components:
        for field, needed in component.requires.items():
            if getattr(cfg, field) != needed:
                raise ValueError(
                    f"{component.kind} {component.name!r} needs {field}={needed!r}: "
                    f"set {field}={needed!r} (got {getattr(cfg, field)!r})"
                )
    advantage, anchor = ADVANTAGES[cfg.advantage], ANCHORS[cfg.anchor]
    weight = cfg.component("weight")
    if weight.needs_ratio and not anchor.is_ratio:
        ratios = ", ".join(repr(n) for n, a in ANCHORS.items() if a.is_ratio)
        raise ValueError(
            f"weight {cfg.weight!r} reads the importance ratio: use anchor {ratios} "
            f"(got {cfg.anchor!r})"
        )
    if advantage.token_level and anchor.reads_x:
        # A sequence-level anchor needs the sign of a sequence-level advantage.
        raise ValueError(
            f"advantage {cfg.advantage!r} is per token, but anchor {cfg.anchor!r} compares "
            "whole completions; use anchor='old' or 'none'"
        )
