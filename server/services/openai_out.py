"""gro's rows as the OpenAI SDK's objects: a dataset as a `file`, a job as a
`fine_tuning.job`, its events (`level`, `type`, `data`) and checkpoints (`step_number`,
`metrics`). Jobs submitted through gro's own API are shown too, with what they have."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from server.db import outputs
from server.db.models import FAILED, RUNNING, SUCCEEDED, Checkpoint, Dataset, Job, JobEvent
from server.db.openai_reads import events_newest_first, metrics_at
from server.schemas.openai import (
    FileObject,
    FineTuningJobOut,
    Hyperparameters,
    JobCheckpointOut,
    JobErrorOut,
    JobEventOut,
    OpenAIList,
)
from server.services.openai_map import BASE_LR

OPENAI_TYPE = {"sft": "supervised", "dpo": "dpo"}
_ERROR_KINDS = ("failed", "enqueue_failed")
_WARN_KINDS = ("requeued", "waiting", "cancel_requested", "pause_requested", "cancelled")
_METRICS_KINDS = ("eval", "checkpoint")
EVENT_PREFIX = "ftevent-"


def unix(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp())


def file_out(dataset: Dataset) -> FileObject:
    return FileObject(
        id=dataset.id,
        bytes=dataset.bytes,
        created_at=int(dataset.created_at.timestamp()),
        filename=dataset.filename,
    )


def _native_method(job: Job) -> dict[str, Any]:
    """The `method` of a job submitted through gro's own API (its gro method where OpenAI has
    no name for it)."""
    kind = OPENAI_TYPE.get(job.method) or (
        "reinforcement" if job.spec.get("rewards") else job.method
    )
    return {"type": kind, "gro_method": job.method}


def _native_hyperparameters(job: Job) -> dict[str, Any]:
    train = job.spec.get("train", {})
    lr = train.get("lr")
    return {
        "batch_size": train.get("batch_size"),
        "n_epochs": train.get("epochs"),
        "learning_rate_multiplier": lr / BASE_LR if isinstance(lr, int | float) else None,
    }


def _estimated_finish(job: Job) -> int | None:
    if job.status != RUNNING or job.eta_seconds is None:
        return None
    return int(time.time() + job.eta_seconds)


def _trained_tokens(job: Job) -> int | None:
    tokens = (job.final_metrics or {}).get("train/tokens")
    return int(tokens) if job.status == SUCCEEDED and tokens is not None else None


def job_out(job: Job) -> FineTuningJobOut:
    extra = job.openai or {}
    error = None
    if job.status == FAILED and job.error_code:
        error = JobErrorOut(code=job.error_code, message=job.error_message or "", param=None)
    data = job.spec.get("data", {})
    return FineTuningJobOut(
        id=job.id,
        created_at=int(job.created_at.timestamp()),
        error=error,
        fine_tuned_model=job.id if job.status == SUCCEEDED else None,
        finished_at=unix(job.finished_at),
        hyperparameters=Hyperparameters(
            **(extra.get("hyperparameters") or _native_hyperparameters(job))
        ),
        model=job.spec.get("model", ""),
        organization_id=f"owner-{job.owner_id}",
        seed=job.seed if job.seed is not None else job.spec.get("train", {}).get("seed", 0),
        status=job.status,
        trained_tokens=_trained_tokens(job),
        training_file=extra.get("training_file") or data.get("train") or data.get("task") or "",
        validation_file=extra.get("validation_file", data.get("eval")),
        estimated_finish=_estimated_finish(job),
        integrations=extra.get("integrations"),
        metadata=extra.get("metadata"),
        method=extra.get("method") or _native_method(job),
        suffix=extra.get("suffix"),
        user_provided_suffix=extra.get("suffix"),
    )


def _level(kind: str) -> str:
    if kind in _ERROR_KINDS:
        return "error"
    return "warn" if kind in _WARN_KINDS else "info"


def event_out(
    event: JobEvent, metrics: dict[int, dict[str, float | None]], total: int | None
) -> JobEventOut:
    """A gro event as OpenAI's: eval and checkpoint events are `metrics` events whose `data`
    holds every metric of their step."""
    data: dict[str, Any] = {"step": event.step, "kind": event.kind}
    is_metrics = event.kind in _METRICS_KINDS and event.step is not None
    if is_metrics:
        data |= {"total_steps": total, **metrics.get(event.step, {})}
    return JobEventOut(
        id=f"{EVENT_PREFIX}{event.id}",
        created_at=int(event.created_at.timestamp()),
        level=_level(event.kind),
        message=event.message,
        type="metrics" if is_metrics else "message",
        data=data,
    )


def event_cursor(after: str | None) -> int | None:
    """The event number of an `after` cursor (`ftevent-12`, or a bare 12)."""
    if after is None:
        return None
    digits = after.removeprefix(EVENT_PREFIX)
    return int(digits) if digits.isdigit() else None


def events_page(session: Session, job: Job, after: str | None, limit: int) -> OpenAIList[Any]:
    rows, more = events_newest_first(session, job.id, event_cursor(after), limit)
    steps = [r.step for r in rows if r.kind in _METRICS_KINDS and r.step is not None]
    metrics = metrics_at(session, job.id, steps)
    return OpenAIList.of([event_out(r, metrics, job.total_steps) for r in rows], more)


def checkpoint_out(checkpoint: Checkpoint, metrics: dict[str, float | None]) -> JobCheckpointOut:
    return JobCheckpointOut(
        id=checkpoint.id,
        created_at=int(checkpoint.created_at.timestamp()),
        fine_tuned_model_checkpoint=checkpoint.id,
        fine_tuning_job_id=checkpoint.job_id,
        metrics={"step": float(checkpoint.step), **metrics},
        step_number=checkpoint.step,
    )


def checkpoints_page(session: Session, job: Job, after: str | None, limit: int) -> OpenAIList[Any]:
    """Newest first; `after` a checkpoint id of the previous page."""
    rows = sorted(outputs.list_checkpoints(session, job.id), key=lambda c: c.step, reverse=True)
    if after is not None:
        ids = [c.id for c in rows]
        rows = rows[ids.index(after) + 1 :] if after in ids else []
    shown = rows[:limit]
    metrics = metrics_at(session, job.id, [c.step for c in shown])
    data = [checkpoint_out(c, metrics[c.step]) for c in shown]
    return OpenAIList.of(data, len(rows) > limit)
