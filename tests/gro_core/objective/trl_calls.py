"""TRL's own loss code, called on fixed log-probs: each trainer's `_compute_loss` (or CPO's
`cpo_loss`) on an instance made without __init__, holding only what the loss reads, with the
model forward replaced by the given log-probs. Nothing here re-implements a TRL loss.

Importing this module imports TRL: the tests that use it fail (never skip) when the `bench`
extra is missing and GRO_REQUIRE_SERVICES=1 (see tests/gro_core/objective/conftest.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import torch
from torch import Tensor
from trl import DPOTrainer, GRPOTrainer, KTOTrainer, RLOOTrainer
from trl.experimental.cpo import CPOTrainer


class _Accelerator:
    """The single-process accelerator the losses' logging reads."""

    device = torch.device("cpu")
    num_processes = 1

    def gather(self, x: Tensor) -> Tensor:
        return x

    gather_for_metrics = gather

    def reduce(self, x: Tensor, reduction: str = "sum") -> Tensor:
        return x


def _float64(loss: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """Run TRL's loss with float64 as torch's default dtype: its constants built from Python
    floats (EXO's torch.tensor(ε), SAPO's torch.where on temperatures) are otherwise float32,
    rounding them by ~1e-8 whatever the inputs' dtype."""

    def run(*args: Any, **kwargs: Any) -> Tensor:
        before = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        try:
            return loss(*args, **kwargs)
        finally:
            torch.set_default_dtype(before)

    run.__doc__, run.__name__ = loss.__doc__, loss.__name__
    return run


def _bare(cls: type, **attributes: Any) -> Any:
    """An instance of a TRL trainer without its __init__ (no model, no data, no accelerate)."""
    trainer = cls.__new__(cls)
    base = dict(
        accelerator=_Accelerator(),
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
        model=SimpleNamespace(training=True),
        aux_loss_enabled=False,
    )
    trainer.__dict__.update(base | attributes)
    return trainer


def _fixed_forward(logprobs: Tensor):
    """The per-token log-prob forward of GRPO and RLOO, returning the given log-probs."""

    def forward(*args: Any, **kwargs: Any) -> tuple[Tensor, Tensor, None]:
        return logprobs, torch.zeros_like(logprobs).detach(), None

    return forward


@_float64
def grpo_loss(
    loss_type: str,
    logprobs: Tensor,
    old: Tensor,
    ref: Tensor,
    mask: Tensor,
    advantages: Tensor,
    *,
    beta: float = 0.0,
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
    delta: float | None = None,
    importance_sampling_level: str = "token",
    use_bias_correction_kl: bool = True,
    max_completion_length: int = 512,
    sapo_temperature_pos: float = 1.0,
    sapo_temperature_neg: float = 1.05,
) -> Tensor:
    """GRPOTrainer._compute_loss on (B, T) log-probs with the given (B,) advantages."""
    args = SimpleNamespace(
        use_bias_correction_kl=use_bias_correction_kl,
        delta=delta,
        sapo_temperature_pos=sapo_temperature_pos,
        sapo_temperature_neg=sapo_temperature_neg,
        steps_per_generation=1,
    )
    trainer = _bare(
        GRPOTrainer,
        args=args,
        loss_type=loss_type,
        beta=beta,
        epsilon_low=epsilon,
        epsilon_high=epsilon if epsilon_high is None else epsilon_high,
        importance_sampling_level=importance_sampling_level,
        top_entropy_quantile=1.0,
        off_policy_mask_threshold=None,
        use_vllm=False,
        vllm_importance_sampling_correction=False,
        current_gradient_accumulation_steps=1,
        max_completion_length=max_completion_length,
        _entropy_bonus_enabled=False,
        _get_per_token_logps_and_entropies=_fixed_forward(logprobs),
    )
    n, t = logprobs.shape
    maskf = mask.to(logprobs.dtype)
    inputs = {
        "prompt_ids": torch.zeros(n, 1, dtype=torch.long),
        "prompt_mask": torch.ones(n, 1, dtype=torch.long),
        "completion_ids": torch.zeros(n, t, dtype=torch.long),
        "completion_mask": maskf,
        "advantages": advantages,
        "old_per_token_logps": old,
        "ref_per_token_logps": ref,
        "num_items_in_batch": maskf.sum(),
    }
    return trainer._compute_loss(None, inputs)


@_float64
def rloo_loss(
    logprobs: Tensor,
    old: Tensor,
    mask: Tensor,
    advantages: Tensor,
    *,
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
) -> Tensor:
    """RLOOTrainer._compute_loss: the completion's clipped ratio, given advantages."""
    trainer = _bare(
        RLOOTrainer,
        epsilon_low=epsilon,
        epsilon_high=epsilon if epsilon_high is None else epsilon_high,
        _get_per_token_logps_and_entropies=_fixed_forward(logprobs),
    )
    n, t = logprobs.shape
    maskf = mask.to(logprobs.dtype)
    inputs = {
        "prompt_ids": torch.zeros(n, 1, dtype=torch.long),
        "prompt_mask": torch.ones(n, 1, dtype=torch.long),
        "completion_ids": torch.zeros(n, t, dtype=torch.long),
        "completion_mask": maskf,
        "old_logps": (old * maskf).sum(dim=1),
        "advantages": advantages,
    }
    return trainer._compute_loss(None, inputs)


class _FixedModel:
    """A causal LM whose fused-head forward returns the given per-token log-probs."""

    training = True

    def __init__(self, logprobs: Tensor) -> None:
        self.logprobs = logprobs

    def __call__(self, **kwargs: Any) -> SimpleNamespace:
        lp = self.logprobs
        zeros = torch.zeros_like(lp).detach()
        return SimpleNamespace(
            log_probs=lp, entropy=zeros, mean_logits=zeros, is_top1=zeros.bool(), aux_loss=None
        )


def _shifted(values: Tensor) -> Tensor:
    """TRL's fused head scores positions 1..T of the input: prepend the prompt position."""
    return torch.cat([torch.zeros_like(values[:, :1]), values], dim=1)


@_float64
def dpo_loss(
    loss_type: str,
    chosen: Tensor,
    rejected: Tensor,
    chosen_mask: Tensor,
    rejected_mask: Tensor,
    ref_chosen: Tensor,
    ref_rejected: Tensor,
    *,
    beta: float = 0.1,
    label_smoothing: float = 0.0,
    discopop_tau: float = 0.05,
) -> Tensor:
    """DPOTrainer._compute_loss on (P, T) per-token log-probs of the pairs' members (zero
    outside their masks) and (P,) reference sequence log-probs."""
    trainer = _bare(
        DPOTrainer,
        args=SimpleNamespace(discopop_tau=discopop_tau),
        loss_types=[loss_type],
        loss_weights=[1.0],
        beta=beta,
        label_smoothing=label_smoothing,
        f_divergence_type="reverse_kl",
        ld_alpha=None,
        use_weighting=False,
        precompute_ref_logps=True,
        _total_train_tokens=0,
        _tp_size=1,
    )
    logprobs = torch.cat([chosen, rejected])
    mask = torch.cat([chosen_mask, rejected_mask]).long()
    inputs = {
        "input_ids": torch.zeros_like(_shifted(mask)),
        "attention_mask": torch.ones_like(_shifted(mask)),
        "completion_mask": _shifted(mask),
        "ref_chosen_logps": ref_chosen,
        "ref_rejected_logps": ref_rejected,
    }
    return trainer._compute_loss(_FixedModel(logprobs), inputs, return_outputs=False)


@_float64
def kto_loss(
    loss_type: str,
    logprobs: Tensor,
    mask: Tensor,
    ref: Tensor,
    labels: Tensor,
    kl_logps: Tensor,
    ref_kl_logps: Tensor,
    *,
    beta: float = 0.1,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
) -> Tensor:
    """KTOTrainer._compute_loss on (N, T) per-token log-probs (zero outside the mask), (N,)
    reference sequence log-probs and labels, and the mismatched pairs' (M,) log-probs."""
    calculate_kl = loss_type != "apo_zero_unpaired"
    trainer = _bare(
        KTOTrainer,
        loss_type=loss_type,
        beta=beta,
        desirable_weight=desirable_weight,
        undesirable_weight=undesirable_weight,
        calculate_KL=calculate_kl,
        precompute_ref_logps=True,
        _total_train_tokens=0,
        _tp_size=1,
        _compute_kl_logps=lambda model, batch: kl_logps if calculate_kl else None,
    )
    m = _shifted(mask.long())
    inputs = {
        "input_ids": torch.zeros_like(m),
        "attention_mask": torch.ones_like(m),
        "completion_mask": m,
        "label": labels.long(),
        "ref_logps": ref,
        "ref_KL_logps": ref_kl_logps,
    }
    return trainer._compute_loss(_FixedModel(logprobs), inputs, return_outputs=False)


@_float64
def cpo_losses(
    loss_type: str,
    chosen_logps: Tensor,
    rejected_logps: Tensor,
    *,
    beta: float = 0.1,
    label_smoothing: float = 0.0,
    simpo_gamma: float = 0.5,
) -> Tensor:
    """CPOTrainer.cpo_loss: (P,) per-pair losses from the members' log-probs (sums, or per
    token means for simpo, as CPOTrainer's get_batch_logps gives them)."""
    trainer = _bare(
        CPOTrainer,
        alpha=0.0,
        loss_type=loss_type,
        beta=beta,
        label_smoothing=label_smoothing,
        simpo_gamma=simpo_gamma,
    )
    losses, _, _ = trainer.cpo_loss(chosen_logps, rejected_logps)
    return losses
