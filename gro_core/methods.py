"""The method registry: one record per method a job can name in `method:`.

A record says what data the method trains on, which objective trains it, its preset (the GRO
components, for every method but sft and reward_model) and its documented arguments. The job
spec, the trainers, the evaluation, `GET /v1/methods` and the dashboard all read it; adding a
method is one record here plus its preset function in gro_core.objective.presets.

    get_method("dpo").kinds                   # frozenset({'preference'})
    get_preset("grpo", epsilon=0.28)          # its GROConfig, the method's arguments applied
    describe_methods()                        # what GET /v1/methods serves

Whether it runs online (samples rollouts) follows from the kinds: a method that accepts
`prompt` rows trains on rollouts of them. Facts about the objective (a reference model, group
comparisons) follow from the preset's components, so they hold for any method_args override.
Nothing here imports torch.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from gro_core.data.kinds import KINDS
from gro_core.objective import presets
from gro_core.objective.config import GROConfig

TrainsWith = Literal["sft", "reward_model", "gro"]


@dataclass(frozen=True)
class Arg:
    """One documented argument of a method (a keyword of `method_args`)."""

    name: str
    type: str
    default: Any
    doc: str


@dataclass(frozen=True)
class Method:
    name: str
    summary: str
    kinds: frozenset[str]
    """Dataset kinds it trains on; `prompt` means rollouts scored by rewards."""
    trains_with: TrainsWith = "gro"
    """The objective: supervised likelihood, a Bradley-Terry reward head, or gro_loss."""
    preset: Callable[..., dict[str, Any]] | None = None
    """gro_loss methods: the preset's function (its keywords are the method's arguments)."""
    arg_docs: Mapping[str, str] = field(default_factory=dict)
    citation: str = ""

    @property
    def online(self) -> bool:
        """It can train on rollouts of prompts."""
        return "prompt" in self.kinds

    @property
    def offline(self) -> bool:
        """It can train on a fixed dataset of completions."""
        return bool(self.kinds - {"prompt"})

    @property
    def generates(self) -> bool:
        """Its model is a policy that generates completions; a reward model only scores them."""
        return self.trains_with != "reward_model"

    @property
    def args(self) -> tuple[Arg, ...]:
        if self.preset is None:
            return ()
        params = inspect.signature(self.preset).parameters.values()
        return tuple(
            Arg(p.name, str(p.annotation), p.default, self.arg_docs.get(p.name, "")) for p in params
        )

    def config(self, **method_args: Any) -> GROConfig | None:
        """The GROConfig this method trains with (None for sft and reward_model)."""
        return None if self.preset is None else get_preset(self.name, **method_args)

    def describe(self) -> dict[str, Any]:
        """A JSON-able record: what GET /v1/methods serves for this method."""
        cfg = self.config()
        return {
            "name": self.name,
            "summary": self.summary,
            "kinds": sorted(self.kinds),
            "online": self.online,
            "offline": self.offline,
            "trains_with": self.trains_with,
            "compares_in_group": bool(cfg and cfg.compares_in_group),
            "needs_reference": bool(cfg and cfg.needs_reference),
            "citation": self.citation,
            "args": [vars(a) for a in self.args],
            "preset": cfg.to_dict() if cfg else None,
        }


def _registry(*methods: Method) -> dict[str, Method]:
    for m in methods:
        unknown = m.kinds - set(KINDS)
        assert not unknown, f"{m.name}: unknown kinds {unknown}"
        if m.preset is not None:
            missing = {a.name for a in m.args} - set(m.arg_docs)
            assert not missing, f"{m.name}: document the arguments {missing}"
    return {m.name: m for m in methods}


_KL = "Strength of the KL penalty to the reference (0 turns the reference off)."
_EPS = "PPO clip range ε of the importance ratio."
_BETA = "Inverse temperature β of the implicit reward; the usual range is 0.01 to 0.5."

METHODS: dict[str, Method] = _registry(
    Method(
        "sft",
        "Supervised fine-tuning: maximise the likelihood of demonstrations.",
        frozenset({"sft"}),
        trains_with="sft",
    ),
    Method(
        "reward_model",
        "A Bradley-Terry reward model (a scalar head) trained on preference pairs.",
        frozenset({"preference"}),
        trains_with="reward_model",
        citation=(
            "Ouyang et al. 2022, Training language models to follow instructions with human "
            "feedback, arXiv:2203.02155"
        ),
    ),
    Method(
        "dpo",
        "DPO: the sigmoid loss on the log-ratio margin of chosen over rejected.",
        frozenset({"preference"}),
        preset=presets.dpo,
        arg_docs={"beta": _BETA},
        citation=(
            "Rafailov et al. 2023, Direct Preference Optimization: Your Language Model is Secretly"
            " a Reward Model, arXiv:2305.18290"
        ),
    ),
    Method(
        "kto",
        "KTO: desirable and undesirable examples against the KL reference point z0.",
        # A preference pair splits into one desirable and one undesirable example.
        frozenset({"unpaired", "preference"}),
        preset=presets.kto,
        arg_docs={
            "beta": _BETA,
            "desirable_weight": "Weight λ_D of desirable examples.",
            "undesirable_weight": "Weight λ_U of undesirable examples.",
        },
        citation=(
            "Ethayarajh et al. 2024, KTO: Model Alignment as Prospect Theoretic Optimization, "
            "arXiv:2402.01306"
        ),
    ),
    Method(
        "cpl",
        "CPL: contrastive preference learning on log-likelihoods, no reference model.",
        frozenset({"preference"}),
        preset=presets.cpl,
        arg_docs={
            "alpha": "Temperature α of the log-likelihood score.",
            "lam": "Weight λ of the rejected completion (conservative bias; 0.5 in the paper).",
        },
        citation=(
            "Hejna et al. 2023, Contrastive Preference Learning: Learning from Human Feedback "
            "without RL, arXiv:2310.13639"
        ),
    ),
    Method(
        "awr",
        "Advantage-weighted regression: likelihood weighted by min(exp(A/τ), max_weight).",
        frozenset({"prompt", "preference", "unpaired"}),
        preset=presets.awr,
        arg_docs={
            "tau": "Temperature τ of the exponential advantage weight.",
            "max_weight": "Cap of the weight, so one outlier cannot dominate a batch.",
        },
        citation=(
            "Peng et al. 2019, Advantage-Weighted Regression: Simple and Scalable Off-Policy "
            "Reinforcement Learning, arXiv:1910.00177"
        ),
    ),
    Method(
        "rloo",
        "RLOO: REINFORCE with the leave-one-out mean reward of the group as baseline.",
        frozenset({"prompt"}),
        preset=presets.rloo,
        arg_docs={"kl_coef": _KL + " Folded into the reward, as TRL does."},
        citation=(
            "Ahmadian et al. 2024, Back to Basics: Revisiting REINFORCE Style Optimization for "
            "Learning from Human Feedback in LLMs, arXiv:2402.14740"
        ),
    ),
    Method(
        "remax",
        "ReMax: REINFORCE with the greedy completion's reward as baseline.",
        frozenset({"prompt"}),
        preset=presets.remax,
        citation=(
            "Li et al. 2023, ReMax: A Simple, Effective, and Efficient Reinforcement Learning "
            "Method for Aligning Large Language Models, arXiv:2310.10505"
        ),
    ),
    Method(
        "grpo",
        "GRPO: group-normalised advantages, PPO clipping, k3 KL in the loss.",
        frozenset({"prompt"}),
        preset=presets.grpo,
        arg_docs={
            "epsilon": _EPS,
            "kl_coef": _KL + " Added to the loss as the k3 estimator.",
            "epsilon_high": "Upper clip range (DAPO's clip-higher); null means epsilon.",
        },
        citation=(
            "Shao et al. 2024, DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open "
            "Language Models, arXiv:2402.03300"
        ),
    ),
    Method(
        "reinforce_pp",
        "REINFORCE++: token-level k1 KL return, batch-whitened, PPO clipping.",
        frozenset({"prompt"}),
        preset=presets.reinforce_pp,
        arg_docs={
            "kl_coef": _KL + " Enters each token's reward.",
            "epsilon": _EPS,
            "baseline": "Subtract the group's mean reward first (REINFORCE++-baseline).",
        },
        citation=(
            "Hu 2025, REINFORCE++: A Simple and Efficient Approach for Aligning Large Language "
            "Models, arXiv:2501.03262"
        ),
    ),
    Method(
        "gro",
        "GRO: RLOO advantages weighted by a sigmoid of the distance to the opposite side.",
        frozenset({"prompt", "preference", "unpaired"}),
        preset=presets.gro,
        arg_docs={"beta": "Sharpness β of the sigmoid weight of the anchor distance."},
        citation=(
            "Cai 2025, One Framework to Rule Them All: Unifying RL-Based and RL-Free Methods in "
            "RLHF, arXiv:2503.19523"
        ),
    ),
)

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
    params = [a.name for a in METHODS[name].args]
    fields = set(GROConfig.field_names()) - {"name"}
    unknown = sorted(set(overrides) - set(params) - fields)
    if unknown:
        raise ValueError(
            f"{name}: unknown argument(s) {', '.join(unknown)}; the method takes "
            f"{', '.join(params) or 'no parameters'}, and any GROConfig field may be overridden "
            f"({', '.join(sorted(fields))})"
        )
    method_args = {k: v for k, v in overrides.items() if k in params}
    try:
        config = PRESETS[name](**method_args)
        config |= {k: v for k, v in overrides.items() if k in fields}
        return GROConfig(name=name, **config)
    except TypeError as exc:  # e.g. a string where a number belongs
        raise ValueError(f"{name}: bad argument type: {exc}") from exc
    except ValueError as exc:
        message = str(exc)
        raise ValueError(message if message.startswith(name) else f"{name}: {message}") from exc


def describe_methods() -> list[dict[str, Any]]:
    """Every method's record, JSON-able, in registry order."""
    return [m.describe() for m in METHODS.values()]
