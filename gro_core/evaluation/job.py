"""An evaluation job: an EvaluationSpec evaluated, its metrics and completions written.

result = run_evaluation(EvaluationSpec.model_validate(doc), "evals/a")
result.metrics          # {"eval/reward": ..., "eval/pass@4": ..., "eval/kl_ref": ...}
result.completions      # one record per completion: the row's fields, completion, reward,
                        # decoding (greedy | sampled); they upload again as a dataset

evals/a/metrics.json        {name: value} of result.metrics
evals/a/completions.jsonl   result.completions, one a line
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import PreTrainedTokenizerBase

from gro_core.data.encode import Example, encode_prompts
from gro_core.evaluation.policy import evaluate_policy, scorer_for
from gro_core.evaluation.spec import EvaluationSpec
from gro_core.evaluation.targets import (
    Loaded,
    check_generates,
    checkpoint_spec,
    find_checkpoint,
    load_checkpoint,
    load_model,
    release,
)
from gro_core.models import load_tokenizer
from gro_core.spec import JobSpec
from gro_core.tasks import generate, get_task
from gro_core.trainers.checkpoint import write_text_atomically
from gro_core.trainers.datasets import read_rows

__all__ = ["COMPLETIONS_FILE", "METRICS_FILE", "EvaluationResult", "run_evaluation"]

METRICS_FILE = "metrics.json"
COMPLETIONS_FILE = "completions.jsonl"


@dataclass
class EvaluationResult:
    """What an evaluation measured, and every completion it scored."""

    metrics: dict[str, float]
    completions: list[dict[str, Any]]
    """P greedy records, then P·G sampled ones (prompt-major)."""


def _run_of(model: str) -> tuple[JobSpec, Path] | None:
    """(the run's spec, its checkpoint) when `model` is a checkpoint or run directory."""
    path = Path(model)
    checkpoint = find_checkpoint(path) if path.is_dir() else None
    return None if checkpoint is None else (checkpoint_spec(checkpoint), checkpoint)


def _held_out(spec: EvaluationSpec, tokenizer: PreTrainedTokenizerBase) -> list[Example]:
    """The first num_prompts prompts of data.eval, or as many from the task's eval split; a
    DataError for a missing file or rows that are not prompts."""
    n = spec.num_prompts
    if spec.data.task is not None:
        rows = generate(get_task(spec.data.task).name, n, seed=spec.seed, split="eval")
    else:
        assert spec.data.eval is not None  # EvaluationData holds exactly one source
        _, rows = read_rows(spec.data.eval, "prompt")
    room = max(2, spec.max_length - spec.max_new_tokens)  # rollouts add max_new_tokens
    return encode_prompts(tokenizer, rows[:n], room)


def _load(spec: EvaluationSpec, run: tuple[JobSpec, Path] | None) -> Loaded:
    if run is None:
        return load_model(spec.model, spec.reference_model, spec.with_reference)
    run_spec, checkpoint = run
    check_generates(run_spec, spec.model)
    return load_checkpoint(run_spec, checkpoint, spec.reference_model, spec.with_reference)


def run_evaluation(spec: EvaluationSpec, out_dir: Path | str | None = None) -> EvaluationResult:
    """Evaluate `spec.model` on its held-out prompts (gro_core.evaluation.policy's metrics).

    The tokenizer is the model's, or for a run's checkpoint its starting model's. The same spec
    gives the same metrics. With `out_dir`, metrics.json and completions.jsonl are written there
    (each atomically). Raises DataError (a ValueError) for unusable data, ValueError for rows
    the rewards cannot score or a reward-model checkpoint, OSError for a model that cannot load.
    """
    run = _run_of(spec.model)
    tokenizer = load_tokenizer(run[0].model if run else spec.model)
    examples = _held_out(spec, tokenizer)
    rows = [e.row for e in examples]
    scorer = scorer_for(spec.rewards, spec.data.task, tokenizer)
    if scorer is not None:
        scorer.check_rows(rows)
    policy, reference = _load(spec, run)
    completions: list[dict[str, Any]] = []
    try:
        metrics = evaluate_policy(
            policy,
            tokenizer,
            examples,
            rows,
            scorer,
            num_generations=spec.num_generations,
            max_new_tokens=spec.max_new_tokens,
            temperature=spec.temperature,
            top_p=spec.top_p,
            stop=tuple(spec.stop),
            reference=reference,
            seed=spec.seed,
            samples=completions,
        )
    finally:
        del policy
        release(reference)
    result = EvaluationResult(metrics, completions)
    if out_dir is not None:
        write_outputs(result, Path(out_dir))
    return result


def write_outputs(result: EvaluationResult, out_dir: Path) -> None:
    """DIR/metrics.json and DIR/completions.jsonl of `result`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomically(out_dir / METRICS_FILE, json.dumps(result.metrics, indent=2) + "\n")
    lines = [json.dumps(c, ensure_ascii=False) + "\n" for c in result.completions]
    write_text_atomically(out_dir / COMPLETIONS_FILE, "".join(lines))
