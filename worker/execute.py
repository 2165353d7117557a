"""What one attempt at a job does once claimed, in whichever process runs it (the worker's
child, or the worker itself with GRO_JOB_ISOLATION=inline): train or evaluate with gro_core,
writing through a DbWriter, and return the fields its job row ends with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError
from sqlalchemy.orm import Session

from gro_core.evaluation.job import run_evaluation
from gro_core.evaluation.playground import Sampling, complete
from gro_core.evaluation.spec import EvaluationSpec
from gro_core.reward_timeout import RewardTimeoutError
from gro_core.spec import SpecError, format_validation_error, load_spec
from gro_core.trainers import DataError, TrainingError, run
from gro_core.trainers.checkpoint import TRAINER_STATE, latest_checkpoint
from server.config import Settings
from server.db import outputs
from server.db.models import CANCELLED, SUCCEEDED
from worker.callback import DbWriter
from worker.refs import BadReferenceError

# What an allocator says when it runs out: torch's CPU allocator ("can't allocate memory"),
# CUDA's ("CUDA out of memory", torch.OutOfMemoryError), the operating system's (ENOMEM).
_OUT_OF_MEMORY = ("out of memory", "can't allocate memory", "cannot allocate memory")


def job_dir(settings: Settings, job_id: str) -> Path:
    return Path(settings.storage_dir) / "jobs" / job_id


def resume_point(session: Session, settings: Settings, job_id: str) -> tuple[int, Path] | None:
    """The newest checkpoint the database lists whose files are whole. A worker records a
    checkpoint only after writing the metrics before it, so one on disk but not listed (the
    worker died in between) may lack its last steps' metrics: it is used only when no listed
    one survives (a run keeping one checkpoint pruned the listed one first)."""
    row = outputs.latest_checkpoint(session, job_id)
    if row is not None:
        path = Path(settings.storage_dir) / row.path
        if (path / TRAINER_STATE).is_file():
            return row.step, path
    return latest_checkpoint(job_dir(settings, job_id))


def failure(exc: BaseException) -> tuple[str, str]:
    """(code, message) a failed job shows: what went wrong, in the user's terms."""
    if isinstance(exc, TrainingError | RewardTimeoutError):
        return exc.code, str(exc)
    if isinstance(exc, DataError | BadReferenceError):
        return "bad_data", str(exc)
    if isinstance(exc, ValidationError | SpecError):
        problems = "; ".join(f"{p['path']}: {p['message']}" for p in format_validation_error(exc))
        return "invalid_spec", problems
    if isinstance(exc, MemoryError | torch.OutOfMemoryError) or any(
        words in str(exc).lower() for words in _OUT_OF_MEMORY
    ):
        return "out_of_memory", f"out of memory: {exc}; try a smaller batch_size or LoRA"
    if isinstance(exc, OSError):
        return "load_error", f"{type(exc).__name__}: {exc}"
    return "error", f"{type(exc).__name__}: {exc}"


def _final(metrics: dict[str, float]) -> dict[str, float | None]:
    return {k: outputs.finite(v) for k, v in metrics.items()}


def train(
    settings: Settings, job_id: str, document: dict[str, Any], checkpoint: Any, writer: DbWriter
) -> dict[str, Any]:
    spec = load_spec(document)
    result = run(spec, job_dir(settings, job_id), [writer], resume=checkpoint or False)
    return {
        "status": SUCCEEDED if result.status == "succeeded" else CANCELLED,
        "step": result.steps,
        "final_metrics": _final(result.final_metrics),
    }


def evaluate(
    settings: Settings, job_id: str, document: dict[str, Any], checkpoint: Any, writer: DbWriter
) -> dict[str, Any]:
    """An evaluation's completions become the job's samples (step 0)."""
    result = run_evaluation(EvaluationSpec.model_validate(document))
    writer.on_samples(0, result.completions)
    writer.on_metrics(0, result.metrics)
    return {"status": SUCCEEDED, "final_metrics": _final(result.metrics)}


def _completion(document: dict[str, Any], index: int) -> dict[str, Any]:
    """Model `index`'s completion of the request's prompt, or the error that stopped it."""
    prompt = document.get("prompt", document.get("messages"))
    shown = prompt if isinstance(prompt, str) else json.dumps(prompt, ensure_ascii=False)
    record = {"prompt": shown, "checkpoint": document["checkpoints"][index]}
    problem = document["problems"].get(str(index))
    if problem is None:
        try:
            sampling = Sampling(**document["sampling"])
            done = complete(document["models"][index], prompt, sampling, document["fields"])
            return record | done
        except Exception as exc:  # one model that fails leaves the others' completions
            problem = failure(exc)[1]
    return record | {"completion": "", "reward": None, "error": problem}


def generate(
    settings: Settings, job_id: str, document: dict[str, Any], checkpoint: Any, writer: DbWriter
) -> dict[str, Any]:
    """One sample per model at step 0, in the request's order."""
    completions = [_completion(document, i) for i in range(len(document["models"]))]
    writer.on_samples(0, completions)
    return {"status": SUCCEEDED, "final_metrics": {}}


WORK = {"train": train, "evaluation": evaluate, "generation": generate}


def use_threads(settings: Settings) -> None:
    if settings.torch_threads is not None:
        torch.set_num_threads(settings.torch_threads)


def run_rank(
    settings: Settings,
    kind: str,
    job_id: str,
    attempt: int,
    document: dict[str, Any],
    checkpoint: tuple[int, Path] | None,
) -> dict[str, Any]:
    """A rank other than 0 of a multi-process job: it trains beside rank 0 and writes nothing
    (the trainer reports on rank 0 only)."""
    if kind != "train":
        raise ValueError(f"a {kind} job runs in one process")
    use_threads(settings)
    run(load_spec(document), job_dir(settings, job_id), [], resume=checkpoint or False)
    return {}


def execute(
    settings: Settings,
    kind: str,
    job_id: str,
    attempt: int,
    document: dict[str, Any],
    checkpoint: tuple[int, Path] | None,
) -> dict[str, Any]:
    """Run the claimed attempt to its end: the job row's final fields. Raises what the run
    raised (JobLostError when the job was taken from this attempt)."""
    use_threads(settings)
    with DbWriter(settings, job_id, attempt) as writer:
        # The module's WORK, looked up now: tests replace `run` or a work function.
        return WORK[kind](settings, job_id, document, checkpoint, writer)
