"""Pick the objective for a job's method and give it what it needs (a reference cache)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import torch
from transformers import PreTrainedTokenizerBase

from gro_core.methods import get_method
from gro_core.models import Reference, load_reference
from gro_core.spec import JobSpec
from gro_core.trainers.encode import Example, mismatched
from gro_core.trainers.offline import (
    Data,
    OfflineGROObjective,
    RewardModelObjective,
    SFTObjective,
    StepResult,
)
from gro_core.trainers.online import OnlineObjective
from gro_core.trainers.prompt_sharing import shares_prompts
from gro_core.trainers.reference import ReferenceCache, fingerprint

REFERENCE_FILE = "reference_logprobs.pt"


class Objective(Protocol):
    def units(self, examples: list[Example]) -> float:
        """What the step's loss is a mean over (tokens, sequences, pairs), counted."""
        ...

    def step(self, model: torch.nn.Module, examples: list[Example]) -> StepResult: ...

    def evaluate(self, model: torch.nn.Module, max_examples: int) -> dict[str, float]: ...


def build_objective(
    spec: JobSpec,
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    data: Data,
    device: torch.device,
    out_dir: Path,
) -> Objective:
    trains_with = get_method(spec.method).trains_with
    if trains_with == "sft":
        return SFTObjective(tokenizer, data, device)
    if trains_with == "reward_model":
        return RewardModelObjective(tokenizer, data, device)
    cfg = spec.objective_config()
    assert cfg is not None  # a gro_loss method has a preset
    needs_reference = cfg.needs_reference
    if data.kind == "prompt":
        live = live_reference(spec, model, out_dir) if needs_reference else None
        return OnlineObjective(spec, tokenizer, data, device, live)
    share = shares_prompts(model, data.train, tokenizer.pad_token_id)
    cache = None
    if needs_reference:
        cache = reference_cache(spec, model, tokenizer, data, device, out_dir, share)
    return OfflineGROObjective(
        spec.method, spec.method_args, tokenizer, data, device, cache, share_prompts=share
    )


def live_reference(spec: JobSpec, model: torch.nn.Module, out_dir: Path) -> Reference:
    """The reference for online methods, which score new rollouts every step: the base with
    LoRA adapters off, or a frozen model (a copy of the starting policy, or loaded anew when
    a resumed policy has moved away from it)."""
    if spec.lora is not None and spec.reference_model is None:
        return load_reference(model)
    source = spec.reference_model or (spec.model if _resumed(out_dir) else None)
    return load_reference(model, source)


def reference_cache(
    spec: JobSpec,
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    data: Data,
    device: torch.device,
    out_dir: Path,
    share: bool | None = None,
) -> ReferenceCache:
    """The run's cached reference log-probs: loaded if this run made them, else computed.

    Without LoRA or a separate reference model, the reference *is* the starting policy,
    so the cache is computed with the policy itself before its first update: no copy of
    the model is ever made (`share` says whether it scores shared-prompt rows right).
    Otherwise the reference is loaded, used once, and released.
    """
    path = Path(out_dir) / REFERENCE_FILE
    splits = {"train": data.train, "eval": data.eval}
    cfg = spec.objective_config()
    if cfg is not None and cfg.anchor == "kl_point":
        splits |= {f"{k}_kl": mismatched(v) for k, v in list(splits.items())}
    if path.exists():
        cached = ReferenceCache.load(path)
        if cached.fingerprint == fingerprint(splits):
            return cached
    pad = tokenizer.pad_token_id
    if spec.reference_model is None and spec.lora is None and not _resumed(out_dir):
        cache = ReferenceCache.compute(model, splits, pad, device, share=share)
    else:
        ref = load_reference(model, spec.reference_model or (None if spec.lora else spec.model))
        with ref.scoring() as ref_model:
            cache = ReferenceCache.compute(ref_model, splits, pad, device)
        ref.release()
    cache.save(path)
    return cache


def _resumed(out_dir: Path) -> bool:
    """A resumed run's policy has trained: it is no longer the reference."""
    return (Path(out_dir) / "checkpoints").is_dir()
