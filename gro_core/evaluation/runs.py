"""Evaluating a run for `gro eval`: a job spec, a checkpoint or a run directory.

    metrics = evaluate_run("runs/job")     # a job spec, a checkpoint directory or a run directory
    $ gro eval runs/a runs/b --json        # several targets: one row each, a comparison

The held-out prompts, rewards and rollout settings come from the run's own spec (or another
spec given with `spec_path`), exactly as its periodic evaluation reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from transformers import PreTrainedTokenizerBase

from gro_core.data.encode import Example, encode_prompts
from gro_core.evaluation.policy import evaluate_policy, scorer_for
from gro_core.evaluation.targets import (
    check_generates,
    checkpoint_spec,
    find_checkpoint,
    load_checkpoint,
    load_model,
    release,
)
from gro_core.models import load_tokenizer
from gro_core.spec import JobSpec, load_spec
from gro_core.trainers.datasets import load_records

__all__ = ["EvalTarget", "evaluate_run", "resolve_target"]

_T = TypeVar("_T")


@dataclass(frozen=True)
class EvalTarget:
    """What to evaluate: weights, the spec they were trained with, and the spec to evaluate on."""

    label: str
    """The target as the user named it: the row label of `gro eval`."""
    spec: JobSpec
    """The run's spec: how to load the weights (LoRA base) and the default reference."""
    checkpoint: Path | None
    """A checkpoint directory; None evaluates `spec.model`, the run's starting point."""
    data_spec: JobSpec
    """Held-out prompts, rewards and rollout settings: `spec` unless another was given."""


def resolve_target(target: str, spec_path: str | Path | None = None) -> EvalTarget:
    """A job spec file, a checkpoint directory (`.../checkpoints/step-N`) or a run directory
    (its latest checkpoint). `spec_path` replaces the data, rewards and rollout settings."""
    path = Path(target)
    if path.is_file():
        spec, checkpoint = load_spec(path), None
    elif path.is_dir():
        checkpoint = find_checkpoint(path)
        if checkpoint is None:
            raise ValueError(f"{target}: neither a checkpoint nor a run directory with one")
        spec = checkpoint_spec(checkpoint)
    else:
        raise FileNotFoundError(f"{target}: no such spec file or directory")
    data_spec = load_spec(Path(spec_path)) if spec_path else spec
    return EvalTarget(target, spec, checkpoint, data_spec)


def _held_out(spec: JobSpec, tokenizer: PreTrainedTokenizerBase, n: int) -> list[Example]:
    """The first `n` held-out prompts: data.eval, or the task's eval split (any kind's `prompt`;
    the task's rows keep `answer`, so its reward scores them)."""
    # The task's eval split is generated with eval.num_prompts rows: ask for n.
    spec = spec.model_copy(update={"eval": spec.eval.model_copy(update={"num_prompts": n})})
    _, _, records = load_records(spec)
    if not records:
        raise ValueError("no held-out prompts: set data.eval or data.task in the spec")
    room = max(2, spec.train.max_length - spec.rollout.max_new_tokens)
    return encode_prompts(tokenizer, records[:n], room)


def _given(value: _T | None, default: _T) -> _T:
    return default if value is None else value


def evaluate_run(
    target: str,
    *,
    spec_path: str | Path | None = None,
    num_prompts: int | None = None,
    num_generations: int | None = None,
    max_new_tokens: int | None = None,
    temperature: float | None = None,
    seed: int | None = None,
    with_reference: bool = True,
    samples: list[dict[str, Any]] | None = None,
) -> dict[str, float]:
    """`evaluate_policy` on a spec's model, a checkpoint or a run's latest checkpoint.

    Unset options come from the (data) spec: eval.num_prompts, rollout.num_generations,
    rollout.max_new_tokens, rollout.temperature, train.seed. The reference model is loaded
    for the KL metrics (skip it with `with_reference=False`) and released afterwards.
    """
    resolved = resolve_target(target, spec_path)
    spec, run_spec = resolved.data_spec, resolved.spec
    tokenizer = load_tokenizer(run_spec.model)
    examples = _held_out(spec, tokenizer, _given(num_prompts, spec.eval.num_prompts))
    scorer = scorer_for(spec.rewards, spec.data.task, tokenizer)
    rows = [e.row for e in examples]
    if scorer is not None:
        scorer.check_rows(rows)
    check_generates(run_spec, resolved.label)
    if resolved.checkpoint is None:
        policy, reference = load_model(run_spec.model, run_spec.reference_model, with_reference)
    else:
        policy, reference = load_checkpoint(run_spec, resolved.checkpoint, None, with_reference)
    try:
        return evaluate_policy(
            policy,
            tokenizer,
            examples,
            rows,
            scorer,
            num_generations=_given(num_generations, spec.rollout.num_generations),
            max_new_tokens=_given(max_new_tokens, spec.rollout.max_new_tokens),
            temperature=_given(temperature, spec.rollout.temperature),
            top_p=spec.rollout.top_p,
            stop=tuple(spec.rollout.stop),
            reference=reference,
            seed=_given(seed, spec.train.seed),
            samples=samples,
        )
    finally:
        del policy
        release(reference)
