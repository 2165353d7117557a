"""The registry's records of methods trained on datasets (some also take prompts).

Citations name the paper; `trl` the TRL trainer and loss type the preset is tested equal to
(tests/gro_core/objective/test_trl_exact.py)."""

from __future__ import annotations

from gro_core.methods.record import Method
from gro_core.objective import presets

_BETA = "Inverse temperature β of the implicit reward; the usual range is 0.01 to 0.5."
_LS = "Label smoothing ε: the assumed rate of flipped preference labels."

OFFLINE: tuple[Method, ...] = (
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
        trl="DPOTrainer loss_type='sigmoid'",
        citation=(
            "Rafailov et al. 2023, Direct Preference Optimization: Your Language Model is Secretly"
            " a Reward Model, arXiv:2305.18290"
        ),
    ),
    Method(
        "sigmoid_norm",
        "Length-normalised DPO: the sigmoid loss on per-token log-ratios.",
        frozenset({"preference"}),
        preset=presets.sigmoid_norm,
        arg_docs={
            "beta": _BETA,
        },
        trl="DPOTrainer loss_type='sigmoid_norm'",
        citation="Rafailov et al. 2023, Direct Preference Optimization, arXiv:2305.18290",
    ),
    Method(
        "ipo",
        "IPO: the squared distance of the per-token log-ratio margin to 1/(2β).",
        frozenset({"preference"}),
        preset=presets.ipo,
        arg_docs={
            "beta": _BETA,
        },
        trl="DPOTrainer loss_type='ipo'",
        citation=(
            "Azar et al. 2023, A General Theoretical Paradigm to Understand Learning from Human "
            "Preferences, arXiv:2310.12036"
        ),
    ),
    Method(
        "hinge",
        "SLiC's hinge loss on the log-ratio margin.",
        frozenset({"preference"}),
        preset=presets.hinge,
        arg_docs={
            "beta": _BETA,
        },
        trl="DPOTrainer loss_type='hinge'",
        citation=(
            "Zhao et al. 2023, SLiC-HF: Sequence Likelihood Calibration with Human Feedback, "
            "arXiv:2305.10425"
        ),
    ),
    Method(
        "robust",
        "Robust DPO: unbiased under preference labels flipped at rate ε.",
        frozenset({"preference"}),
        preset=presets.robust,
        arg_docs={
            "beta": _BETA,
            "label_smoothing": _LS,
        },
        trl="DPOTrainer loss_type='robust'",
        citation=(
            "Chowdhury et al. 2024, Provably Robust DPO: Aligning Language Models with Noisy "
            "Feedback, arXiv:2403.00409"
        ),
    ),
    Method(
        "exo_pair",
        "EXO: the reverse KL from the model's pair distribution to [1 − ε, ε].",
        frozenset({"preference"}),
        preset=presets.exo_pair,
        arg_docs={
            "beta": _BETA,
            "label_smoothing": _LS + " Must be > 0.",
        },
        trl="DPOTrainer loss_type='exo_pair'",
        citation=(
            "Ji et al. 2024, Towards Efficient Exact Optimization of Language Model Alignment, "
            "arXiv:2402.00856"
        ),
    ),
    Method(
        "discopop",
        "DiscoPOP: logistic and exponential losses blended by a gate of the margin.",
        frozenset({"preference"}),
        preset=presets.discopop,
        arg_docs={
            "beta": _BETA,
            "discopop_tau": "Temperature τ of the mixing gate.",
        },
        trl="DPOTrainer loss_type='discopop'",
        citation=(
            "Chris Lu et al. 2024, Discovering Preference Optimization Algorithms with and for "
            "Large Language Models, arXiv:2406.08414"
        ),
    ),
    Method(
        "aot",
        "AOT: DPO on the batch's sorted policy margins against the sorted reference margins.",
        frozenset({"preference"}),
        preset=presets.aot,
        arg_docs={
            "beta": _BETA,
            "label_smoothing": _LS,
        },
        trl="DPOTrainer loss_type='aot'",
        citation=(
            "Melnyk et al. 2024, Distributional Preference Alignment of LLMs via Optimal "
            "Transport, arXiv:2406.05882"
        ),
    ),
    Method(
        "bco_pair",
        "BCO on pairs: each member's log-ratio classified on its own.",
        frozenset({"preference"}),
        preset=presets.bco_pair,
        arg_docs={
            "beta": _BETA,
        },
        trl="DPOTrainer loss_type='bco_pair'",
        citation=(
            "Jung et al. 2024, Binary Classifier Optimization for Large Language Model Alignment,"
            " arXiv:2404.04656"
        ),
    ),
    Method(
        "sppo_hard",
        "SPPO with hard labels: each log-ratio regressed to ±1/(2β).",
        frozenset({"preference"}),
        preset=presets.sppo_hard,
        arg_docs={
            "beta": _BETA,
        },
        trl="DPOTrainer loss_type='sppo_hard'",
        citation=(
            "Wu et al. 2024, Self-Play Preference Optimization for Language Model Alignment, "
            "arXiv:2405.00675"
        ),
    ),
    Method(
        "nca_pair",
        "NCA on pairs: absolute likelihoods of both members, not just the margin.",
        frozenset({"preference"}),
        preset=presets.nca_pair,
        arg_docs={
            "beta": _BETA,
        },
        trl="DPOTrainer loss_type='nca_pair'",
        citation=(
            "Chen et al. 2024, Noise Contrastive Alignment of Language Models with Explicit "
            "Rewards, arXiv:2402.05369"
        ),
    ),
    Method(
        "apo_zero",
        "APO-zero: raise the chosen's and lower the rejected's likelihood ratio.",
        frozenset({"preference"}),
        preset=presets.apo_zero,
        arg_docs={
            "beta": _BETA,
        },
        trl="DPOTrainer loss_type='apo_zero'",
        citation=(
            "D'Oosterlinck et al. 2024, Anchored Preference Optimization and Contrastive "
            "Revisions, arXiv:2408.06266"
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
        trl="KTOTrainer loss_type='kto'",
        citation=(
            "Ethayarajh et al. 2024, KTO: Model Alignment as Prospect Theoretic Optimization, "
            "arXiv:2402.01306"
        ),
    ),
    Method(
        "apo_zero_unpaired",
        "APO-zero on unpaired desirable and undesirable examples.",
        frozenset({"unpaired", "preference"}),
        preset=presets.apo_zero_unpaired,
        arg_docs={
            "beta": _BETA,
            "desirable_weight": "Weight λ_D of desirable examples.",
            "undesirable_weight": "Weight λ_U of undesirable examples.",
        },
        trl="KTOTrainer loss_type='apo_zero_unpaired'",
        citation=(
            "D'Oosterlinck et al. 2024, Anchored Preference Optimization and Contrastive "
            "Revisions, arXiv:2408.06266"
        ),
    ),
    Method(
        "cpo",
        "CPO: the sigmoid loss on log-likelihood margins (no reference) plus the chosen's NLL.",
        frozenset({"preference"}),
        preset=presets.cpo,
        arg_docs={
            "beta": _BETA,
            "label_smoothing": _LS,
            "cpo_alpha": "Weight α of the NLL of the chosen completions.",
        },
        trl="CPOTrainer loss_type='sigmoid'",
        citation=(
            "Xu et al. 2024, Contrastive Preference Optimization: Pushing the Boundaries of LLM "
            "Performance in Machine Translation, arXiv:2401.08417"
        ),
    ),
    Method(
        "simpo",
        "SimPO: the per-token log-likelihood margin past a target γ, no reference.",
        frozenset({"preference"}),
        preset=presets.simpo,
        arg_docs={
            "beta": _BETA,
            "simpo_gamma": "Target reward margin γ.",
            "label_smoothing": _LS,
            "cpo_alpha": "Weight α of the chosen's NLL (0: pure SimPO; 1: CPO-SimPO).",
        },
        trl="CPOTrainer loss_type='simpo'",
        citation=(
            "Meng et al. 2024, SimPO: Simple Preference Optimization with a Reference-Free "
            "Reward, arXiv:2405.14734"
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
