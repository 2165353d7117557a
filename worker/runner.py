"""Running one job: claim it, resolve what its spec names, train or evaluate with gro_core,
and record how it ended. Celery tasks call these; so do tests, without Celery."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import select

from server.config import Settings
from server.db import jobs as db_jobs
from server.db import outputs
from server.db.models import CANCELLED, FAILED, QUEUED, SUCCEEDED, Job, Metric
from server.db.session import session_scope
from worker.callback import DbWriter, JobLostError
from worker.refs import BadReferenceError, NotReadyError, resolve_spec

log = logging.getLogger("gro.worker")

SKIPPED, WAITING = "skipped", "waiting"


def job_dir(settings: Settings, job_id: str) -> Path:
    return Path(settings.storage_dir) / "jobs" / job_id


def failure(exc: BaseException) -> tuple[str, str]:
    """(code, message) a failed job shows: what went wrong, in the user's terms."""
    from gro_core.spec import SpecError, format_validation_error
    from gro_core.trainers import DataError, TrainingError

    if isinstance(exc, TrainingError):
        return exc.code, str(exc)
    if isinstance(exc, DataError | BadReferenceError):
        return "bad_data", str(exc)
    if isinstance(exc, ValidationError | SpecError):
        problems = "; ".join(f"{p['path']}: {p['message']}" for p in format_validation_error(exc))
        return "invalid_spec", problems
    if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
        return "out_of_memory", f"out of memory: {exc}; try a smaller batch_size or LoRA"
    if isinstance(exc, OSError):
        return "load_error", f"{type(exc).__name__}: {exc}"
    return "error", f"{type(exc).__name__}: {exc}"


def _prepare(settings: Settings, job_id: str, kind: str) -> tuple[dict[str, Any], Job] | str:
    """The resolved spec document and the job row, or SKIPPED / WAITING / FAILED."""
    with session_scope(settings.database_url) as session:
        job = session.get(Job, job_id)
        if job is None or job.status != QUEUED or job.kind != kind:
            return SKIPPED  # finished, cancelled, claimed by another worker, or unknown
        stored = job.spec["data_spec"] if kind == "evaluation" else job.spec
        try:
            return resolve_spec(session, Path(settings.storage_dir), stored), job
        except NotReadyError as exc:
            _note_waiting(session, job, str(exc))
            return WAITING
        except BadReferenceError as exc:
            db_jobs.fail_queued(session, job_id, "bad_reference", str(exc))
            return FAILED


def _note_waiting(session: Any, job: Job, message: str) -> None:
    """One `waiting` event per wait, not one per retry."""
    last = outputs.last_event(session, job.id)
    if last is None or last.kind != "waiting":
        db_jobs.add_event(session, job.id, "waiting", message)


@dataclass
class Claimed:
    """A job this worker now owns: its resolved spec, stored row and attempt number."""

    document: dict[str, Any]
    job: Job
    attempt: int


def _claim(settings: Settings, job_id: str, kind: str, worker: str) -> Claimed | str:
    """Resolve, then claim (queued → running); SKIPPED / WAITING / FAILED otherwise."""
    prepared = _prepare(settings, job_id, kind)
    if isinstance(prepared, str):
        return prepared
    document, job = prepared
    with session_scope(settings.database_url) as session:
        attempt = db_jobs.claim(session, job_id, worker)
    return SKIPPED if attempt is None else Claimed(document, job, attempt)


def _elapsed_before(settings: Settings, job_id: str, step: int) -> float:
    """Training seconds up to `step` of an earlier attempt (the elapsed-time axis goes on)."""
    with session_scope(settings.database_url) as session:
        query = select(Metric.value).where(
            Metric.job_id == job_id, Metric.name == "time/elapsed_s", Metric.step == step
        )
        return float(session.scalar(query) or 0.0)


def _start(settings: Settings, job_id: str, resume: bool, worker: str, attempt: int) -> int:
    """The step this attempt continues from; outputs written after it are dropped."""
    from gro_core.trainers.checkpoint import latest_checkpoint

    found = latest_checkpoint(job_dir(settings, job_id)) if resume else None
    step = found[0] if found else 0
    with session_scope(settings.database_url) as session:
        outputs.delete_after(session, job_id, step)
        where = f"from step {step}" if step else "from the start"
        db_jobs.add_event(session, job_id, "claimed", f"attempt {attempt} on {worker}, {where}")
    return step


def _finish(settings: Settings, job_id: str, attempt: int, status: str, **fields: Any) -> None:
    with session_scope(settings.database_url) as session:
        if not db_jobs.finish(session, job_id, attempt, status, **fields):
            log.warning("job %s changed hands before attempt %s finished", job_id, attempt)


def _use_threads(settings: Settings) -> None:
    if settings.torch_threads is not None:
        import torch

        torch.set_num_threads(settings.torch_threads)


def _run_claimed(
    settings: Settings,
    job_id: str,
    attempt: int,
    work: Callable[[DbWriter], dict[str, Any]],
    elapsed: float = 0.0,
) -> str:
    """Run `work`, then record how it ended (never retried: a failure is the job's)."""
    _use_threads(settings)
    try:
        with DbWriter(settings, job_id, attempt, elapsed) as writer:
            fields = work(writer)
    except JobLostError:
        return SKIPPED  # re-queued elsewhere while this attempt ran: its new owner finishes
    except Exception as exc:
        code, message = failure(exc)
        log.warning("job %s failed: %s", job_id, message)
        _finish(settings, job_id, attempt, FAILED, error_code=code, error_message=message[:4000])
        with session_scope(settings.database_url) as session:
            db_jobs.add_event(session, job_id, "failed", message[:4000])
        return FAILED
    _finish(settings, job_id, attempt, **fields)
    return fields["status"]


def _final(metrics: dict[str, float]) -> dict[str, float | None]:
    return {k: outputs.finite(v) for k, v in metrics.items()}


def run_train_job(settings: Settings, job_id: str, worker: str) -> str:
    """Train one queued job to its end; returns its final status, SKIPPED or WAITING."""
    claimed = _claim(settings, job_id, "train", worker)
    if isinstance(claimed, str):
        return claimed
    document, attempt = claimed.document, claimed.attempt
    start = _start(settings, job_id, claimed.job.resume, worker, attempt)

    def work(writer: DbWriter) -> dict[str, Any]:
        from gro_core.spec import load_spec
        from gro_core.trainers import run

        result = run(load_spec(document), job_dir(settings, job_id), [writer], resume=start > 0)
        status = SUCCEEDED if result.status == "succeeded" else CANCELLED
        return {
            "status": status,
            "step": result.steps,
            "final_metrics": _final(result.final_metrics),
        }

    return _run_claimed(settings, job_id, attempt, work, _elapsed_before(settings, job_id, start))


def run_evaluation_job(settings: Settings, job_id: str, worker: str) -> str:
    """Evaluate one queued evaluation; its completions become the job's samples (step 0)."""
    claimed = _claim(settings, job_id, "evaluation", worker)
    if isinstance(claimed, str):
        return claimed
    document, attempt = claimed.document, claimed.attempt
    request = claimed.job.spec["request"]

    def work(writer: DbWriter) -> dict[str, Any]:
        from gro_core.evaluation.runs import evaluate_run

        completions: list[dict[str, Any]] = []
        with tempfile.TemporaryDirectory() as tmp:
            # evaluate_run reads targets from files: the model is the spec's, or a checkpoint.
            spec_file = Path(tmp) / "spec.yaml"
            spec_file.write_text(yaml.safe_dump(document))
            model = document["model"]
            target = model if Path(model).is_dir() else str(spec_file)
            metrics = evaluate_run(
                target,
                spec_path=spec_file,
                with_reference=request["with_reference"],
                samples=completions,
            )
        writer.on_samples(0, completions)
        writer.on_metrics(0, metrics)
        return {"status": SUCCEEDED, "final_metrics": _final(metrics)}

    return _run_claimed(settings, job_id, attempt, work)
