"""The reference model: the frozen starting point that KL penalties and DPO-style losses use.

With LoRA the reference is the policy itself with its adapters switched off, which costs no
memory. Otherwise it is a separate frozen copy. Either way a trainer writes

    with reference.scoring() as model:
        logits = model(input_ids, attention_mask=mask).logits   # (B, T, V)

and, once it has cached what it needs, calls `reference.release()`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

import torch
from peft import PeftModel
from torch.distributed.fsdp import FSDPModule

from gro_core.models.loading import ModelName, load_policy

_RELEASED = "the reference model was released; score it before calling release()"


class Reference:
    """A frozen model to score with, either a separate module or the policy without adapters."""

    def __init__(self, model: torch.nn.Module, *, adapters_disabled: bool) -> None:
        """Wrap `model`; with `adapters_disabled` it is a PeftModel scored without adapters."""
        if adapters_disabled and not isinstance(model, PeftModel):
            raise ValueError("adapters_disabled needs a peft model (a policy loaded with LoRA)")
        self._model: torch.nn.Module | None = model
        self.adapters_disabled = adapters_disabled
        """True when the reference is the policy's base model (LoRA), not a copy."""

    @property
    def released(self) -> bool:
        """Whether `release()` was called."""
        return self._model is None

    @property
    def copy(self) -> torch.nn.Module | None:
        """The separate frozen model, to shard like the policy; None when the reference is
        the policy itself (LoRA, adapters off) or was released."""
        return None if self.adapters_disabled else self._model

    @contextmanager
    def scoring(self) -> Iterator[torch.nn.Module]:
        """Yield the module to call for reference outputs, in eval mode and without grad."""
        if self._model is None:
            raise RuntimeError(_RELEASED)
        model = self._model
        was_training = model.training
        # Eval mode so that dropout (present in e.g. GPT-2) cannot make the reference noisy.
        model.eval()
        try:
            with torch.no_grad(), self._adapters_off(model):
                yield model
        finally:
            model.train(was_training)
            if isinstance(model, FSDPModule):
                # FSDP2 keeps a root's gathered parameters after its forward, for the backward
                # that follows; a reference has none, so give back all but this rank's shard.
                model.reshard()

    def _adapters_off(self, model: torch.nn.Module) -> AbstractContextManager[object]:
        if isinstance(model, PeftModel) and self.adapters_disabled:
            return model.disable_adapter()
        return nullcontext()

    def release(self) -> None:
        """Drop the reference; a separate copy's memory is freed, a shared policy is kept."""
        model, self._model = self._model, None
        if model is not None and not self.adapters_disabled:
            on_cuda = any(p.is_cuda for p in model.parameters())
            del model
            if on_cuda:
                # Return the copy's blocks to the driver so the policy's caches can grow.
                torch.cuda.empty_cache()


def _frozen(model: torch.nn.Module) -> torch.nn.Module:
    model.eval()
    model.requires_grad_(False)
    return model


def _base_model(policy: torch.nn.Module) -> torch.nn.Module:
    """The transformers model under any peft wrapper."""
    return policy.get_base_model() if isinstance(policy, PeftModel) else policy


def load_reference(
    policy: torch.nn.Module,
    reference_name_or_path: ModelName | None = None,
    *,
    cache_dir: str | Path | None = None,
) -> Reference:
    """The reference for `policy`; call before training changes the policy.

    - `reference_name_or_path` given: that model, loaded frozen on the policy's device and dtype.
    - else, a LoRA policy (a PeftModel): the policy itself with adapters disabled.
    - else: a frozen deep copy of the policy as it is now.
    """
    if reference_name_or_path is not None:
        # The first parameter is the embedding, not an adapter (peft may keep those in float32).
        param = next(_base_model(policy).parameters())
        model = load_policy(
            reference_name_or_path,
            dtype=_dtype_name(param.dtype),
            device=str(param.device),
            cache_dir=cache_dir,
        )
        return Reference(_frozen(model), adapters_disabled=False)
    if isinstance(policy, PeftModel):
        return Reference(policy, adapters_disabled=True)
    return Reference(_frozen(copy.deepcopy(policy)), adapters_disabled=False)


def _dtype_name(dtype: torch.dtype) -> str:
    """The name `pick_dtype` takes for `dtype`, e.g. torch.bfloat16 -> "bfloat16"."""
    return str(dtype).removeprefix("torch.")
