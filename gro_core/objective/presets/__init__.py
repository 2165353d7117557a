"""Presets: each published method as the GROConfig fields whose gradient equals the original's.

Each function maps the method's own parameters (named as its paper or TRL names them, with
TRL's defaults) onto components (gro_core.objective.components). A method's record in
gro_core.methods names its preset; `gro_core.methods.get_preset` builds the config. The tests
check every preset's gradient against the method's published loss, written independently,
and against TRL's own loss code (tests/gro_core/objective/test_trl_exact.py).

Each docstring states the method's loss (`Loss:`) and why the preset's components give its
gradient (`Gradient:`), in the notation of docs/objective.md, which is generated from them:
ℓ_i the log-likelihood of completion i, Δ_i = ℓ_i − ℓ^ref_i, s_i = sign(A_i), ⁺/⁻ the
chosen/rejected member of a pair, ρ the per-token importance ratio π_θ/π_old, u = s·d − margin.
"""

from gro_core.objective.presets.preference import (
    aot,
    apo_zero,
    apo_zero_unpaired,
    bco_pair,
    cpl,
    cpo,
    discopop,
    dpo,
    exo_pair,
    hinge,
    ipo,
    kto,
    nca_pair,
    robust,
    sigmoid_norm,
    simpo,
    sppo_hard,
)
from gro_core.objective.presets.rl import (
    bnpo,
    cispo,
    dapo,
    dr_grpo,
    grpo,
    gspo,
    reinforce_pp,
    remax,
    rloo,
    sapo,
)
from gro_core.objective.presets.weighted import awr, gro

__all__ = [
    "aot", "apo_zero", "apo_zero_unpaired", "awr", "bco_pair", "bnpo", "cispo", "cpl", "cpo",
    "dapo", "discopop", "dpo", "dr_grpo", "exo_pair", "gro", "grpo", "gspo", "hinge", "ipo",
    "kto", "nca_pair", "reinforce_pp", "remax", "rloo", "robust", "sapo", "sigmoid_norm",
    "simpo", "sppo_hard",
]  # fmt: skip
