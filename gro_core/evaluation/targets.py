"""What an evaluation target names, and its weights loaded with the reference to measure KL to.

A target is a model (builtin:<name>, a Hugging Face id, a model directory), a checkpoint
directory of a run (`.../checkpoints/step-N`, its trainer state holds the job spec it was
trained with) or a run directory (its latest checkpoint).
"""

from __future__ import annotations

from pathlib import Path

import torch
from peft import PeftModel

from gro_core.methods import get_method
from gro_core.models import Reference, load_policy, load_reference, load_run_model
from gro_core.spec import JobSpec, load_spec
from gro_core.trainers.checkpoint import TRAINER_STATE, latest_checkpoint

Loaded = tuple[torch.nn.Module, Reference | None]
"""(policy, its reference or None when KL is not measured)."""


def checkpoint_spec(checkpoint: Path) -> JobSpec:
    """The job spec a checkpoint was trained with, read from its trainer state."""
    # weights_only=False: the state holds RNG tuples we wrote. mmap: the optimizer's moments
    # (twice the model) are never read, only the small `spec` entry.
    state = torch.load(
        checkpoint / TRAINER_STATE, map_location="cpu", weights_only=False, mmap=True
    )
    if "spec" not in state:
        raise ValueError(f"{checkpoint}: the trainer state holds no job spec")
    return load_spec(state["spec"])


def find_checkpoint(path: Path) -> Path | None:
    """`path` itself when it is a checkpoint, else the latest checkpoint of the run it holds."""
    if (path / TRAINER_STATE).is_file():
        return path
    found = latest_checkpoint(path)
    return found[1] if found else None


def check_generates(spec: JobSpec, label: str) -> None:
    """Refuse a run whose model does not generate (a reward model): nothing to sample."""
    if not get_method(spec.method).generates:
        raise ValueError(f"{label}: a reward model does not generate; nothing to evaluate")


def load_model(model: str, reference_model: str | None, with_reference: bool) -> Loaded:
    """A model that is not a run's checkpoint, and its reference: `reference_model`, else the
    model itself (no second copy, and KL 0)."""
    policy = load_policy(model)
    if not with_reference:
        return policy, None
    if reference_model is None:
        return policy, Reference(policy, adapters_disabled=False)
    return policy, load_reference(policy, reference_model)


def load_checkpoint(
    spec: JobSpec, checkpoint: Path, reference_model: str | None, with_reference: bool
) -> Loaded:
    """A run's weights at `checkpoint` (LoRA adapters on the spec's base) and its reference:
    `reference_model`, else the run's reference model, else its starting model (the base
    with adapters off for LoRA)."""
    policy = load_run_model(spec, checkpoint)
    if not with_reference:
        return policy, None
    reference = reference_model or spec.reference_model
    if reference is None and isinstance(policy, PeftModel):
        return policy, load_reference(policy)  # the base model: adapters off, no copy
    return policy, load_reference(policy, reference or spec.model)


def release(reference: Reference | None) -> None:
    """Drop the reference and return freed GPU memory, for the next target to load into; the
    caller drops its policy first."""
    if reference is not None:
        reference.release()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
