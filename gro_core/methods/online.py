"""The registry's records of methods trained on rollouts of prompts.

Citations name the paper; `trl` the TRL trainer and loss type the preset is tested equal to
(tests/gro_core/objective/test_trl_exact.py)."""

from __future__ import annotations

from gro_core.methods.record import Method
from gro_core.objective import presets

_KL = "Strength of the KL penalty to the reference (0 turns the reference off)."
_BETA_KL = "Strength β of the k3 KL penalty to the reference in the loss (0: no reference)."
_EPS = "PPO clip range ε of the importance ratio."
_EPS_HIGH = "Upper clip range (DAPO's clip-higher, 0.28 recommended); null means epsilon."
_DELTA = "Two-sided clipping: no gradient where the ratio exceeds δ (> 1 + ε); null: off."
_SCALE = "Divide the advantage by the group's reward std ('group'), the batch's, or 'none'."
_BIAS = "Multiply the k3 term by the importance ratio (unbiased off-policy KL gradient)."

ONLINE: tuple[Method, ...] = (
    Method(
        "rloo",
        "RLOO: REINFORCE with the leave-one-out mean reward of the group as baseline.",
        frozenset({"prompt"}),
        preset=presets.rloo,
        arg_docs={
            "kl_coef": _KL + " Folded into the reward, as TRL does (TRL's beta).",
            "epsilon": _EPS + " The ratio is the completion's, exp(ℓ − ℓ_old).",
            "epsilon_high": _EPS_HIGH,
            "normalize_advantages": "Whiten the advantages over the batch.",
        },
        trl="RLOOTrainer",
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
            "epsilon_high": _EPS_HIGH,
            "delta": _DELTA,
            "use_bias_correction_kl": _BIAS,
        },
        trl="GRPOTrainer loss_type='grpo'",
        citation=(
            "Shao et al. 2024, DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open "
            "Language Models, arXiv:2402.03300"
        ),
    ),
    Method(
        "dapo",
        "DAPO's token-level loss: GRPO's clipped terms averaged over all tokens (TRL's default).",
        frozenset({"prompt"}),
        preset=presets.dapo,
        arg_docs={
            "beta": _BETA_KL,
            "epsilon": _EPS,
            "epsilon_high": _EPS_HIGH,
            "delta": _DELTA,
            "scale_rewards": _SCALE,
            "use_bias_correction_kl": _BIAS,
        },
        trl="GRPOTrainer loss_type='dapo'",
        citation=(
            "Yu et al. 2025, DAPO: An Open-Source LLM Reinforcement Learning System at Scale, "
            "arXiv:2503.14476"
        ),
    ),
    Method(
        "bnpo",
        "BNPO: GRPO's clipped terms averaged over the tokens of the batch.",
        frozenset({"prompt"}),
        preset=presets.bnpo,
        arg_docs={
            "beta": _BETA_KL,
            "epsilon": _EPS,
            "epsilon_high": _EPS_HIGH,
            "delta": _DELTA,
            "scale_rewards": _SCALE,
            "use_bias_correction_kl": _BIAS,
        },
        trl="GRPOTrainer loss_type='bnpo'",
        citation=(
            "Xiao et al. 2025, On the Design of KL-Regularized Policy Gradient Algorithms for LLM"
            " Reasoning / BNPO: Beta Normalization Policy Optimization, arXiv:2506.02864"
        ),
    ),
    Method(
        "dr_grpo",
        "Dr. GRPO: GRPO without its length and std normalisation biases.",
        frozenset({"prompt"}),
        preset=presets.dr_grpo,
        arg_docs={
            "beta": _BETA_KL,
            "epsilon": _EPS,
            "epsilon_high": _EPS_HIGH,
            "delta": _DELTA,
            "scale_rewards": _SCALE,
            "use_bias_correction_kl": _BIAS,
            "max_completion_length": (
                "The constant L_max the token sums are divided by; online, rollout.max_new_tokens "
                "unless given."
            ),
        },
        trl="GRPOTrainer loss_type='dr_grpo'",
        citation=(
            "Liu et al. 2025, Understanding R1-Zero-Like Training: A Critical Perspective, "
            "arXiv:2503.20783"
        ),
    ),
    Method(
        "gspo",
        "GSPO: one clipped importance ratio per completion (the geometric mean of its tokens').",
        frozenset({"prompt"}),
        preset=presets.gspo,
        arg_docs={
            "beta": _BETA_KL,
            "epsilon": _EPS,
            "epsilon_high": _EPS_HIGH,
            "scale_rewards": _SCALE,
            "use_bias_correction_kl": _BIAS,
        },
        trl="GRPOTrainer importance_sampling_level='sequence', loss_type='grpo'",
        citation="Zheng et al. 2025, Group Sequence Policy Optimization, arXiv:2507.18071",
    ),
    Method(
        "cispo",
        "CISPO: the clipped importance weight held constant, so every token keeps its gradient.",
        frozenset({"prompt"}),
        preset=presets.cispo,
        arg_docs={
            "beta": _BETA_KL,
            "scale_rewards": _SCALE,
            "use_bias_correction_kl": _BIAS,
            "epsilon_high": "The cap ε_max of the importance weight (5.0 recommended by TRL).",
        },
        trl="GRPOTrainer loss_type='cispo'",
        citation=(
            "MiniMax 2025, MiniMax-M1: Scaling Test-Time Compute Efficiently with Lightning "
            "Attention, arXiv:2506.13585"
        ),
    ),
    Method(
        "sapo",
        "SAPO: a smooth sigmoid gate of the importance ratio instead of the hard clip.",
        frozenset({"prompt"}),
        preset=presets.sapo,
        arg_docs={
            "beta": _BETA_KL,
            "scale_rewards": _SCALE,
            "use_bias_correction_kl": _BIAS,
            "sapo_temperature_pos": "Gate temperature τ for A > 0.",
            "sapo_temperature_neg": "Gate temperature τ for A ≤ 0.",
        },
        trl="GRPOTrainer loss_type='sapo'",
        citation="Gao et al. 2025, Soft Adaptive Policy Optimization, arXiv:2511.20347",
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
)
