"""Build a run's objective from its method's registry record, with the reference it needs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from gro_core.data.encode import mismatched
from gro_core.methods import TrainsWith, get_method
from gro_core.models import Reference, load_reference
from gro_core.spec import JobSpec
from gro_core.trainers.datasets import Data
from gro_core.trainers.offline import OfflineGROObjective, RewardModelObjective, SFTObjective
from gro_core.trainers.online import OnlineObjective
from gro_core.trainers.prompt_sharing import shares_prompts
from gro_core.trainers.protocol import Objective
from gro_core.trainers.reference_cache import ReferenceCache, fingerprint

REFERENCE_FILE = "reference_logprobs.pt"


@dataclass(frozen=True)
class RunParts:
    """What an objective is built from: the run's spec, model, tokenizer, data and place."""

    spec: JobSpec
    model: torch.nn.Module
    tokenizer: PreTrainedTokenizerBase
    data: Data
    device: torch.device
    out_dir: Path


def _sft(run: RunParts) -> Objective[Any]:
    return SFTObjective(run.tokenizer, run.data, run.device)


def _reward_model(run: RunParts) -> Objective[Any]:
    return RewardModelObjective(run.tokenizer, run.data, run.device)


def _gro(run: RunParts) -> Objective[Any]:
    """gro_loss on rollouts of prompts (online) or on a fixed dataset (offline)."""
    spec, model, data = run.spec, run.model, run.data
    cfg = spec.objective_config()
    assert cfg is not None  # a gro_loss method has a preset
    if data.kind == "prompt":
        live = live_reference(spec, model, run.out_dir) if cfg.needs_reference else None
        return OnlineObjective(spec, run.tokenizer, data, run.device, live)
    share = shares_prompts(model, data.train, run.tokenizer.pad_token_id)
    cache = None
    if cfg.needs_reference:
        cache = reference_cache(
            spec, model, run.tokenizer, data, run.device, run.out_dir, share=share
        )
    return OfflineGROObjective(
        spec.method, spec.method_args, run.tokenizer, data, run.device, cache, share_prompts=share
    )


# The objective each kind of method record trains with (`Method.trains_with`).
_BUILDERS: dict[TrainsWith, Callable[[RunParts], Objective[Any]]] = {
    "sft": _sft,
    "reward_model": _reward_model,
    "gro": _gro,
}


def build_objective(
    spec: JobSpec,
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    data: Data,
    device: torch.device,
    out_dir: Path,
) -> Objective[Any]:
    """The objective the spec's method trains with (its registry record's `trains_with`),
    with the reference it needs: a live one online, cached log-probs offline."""
    run = RunParts(spec, model, tokenizer, data, device, out_dir)
    return _BUILDERS[get_method(spec.method).trains_with](run)


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
