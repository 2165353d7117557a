"""Jobs: submit (validate, store, commit, then enqueue), cancel, resume, and how a job row is
shown."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from server.config import Settings
from server.db.jobs import (
    add_event,
    create_job,
    mark_not_enqueued,
    request_cancel,
    request_pause,
    request_resume,
)
from server.db.models import Checkpoint, Job, Owner
from server.errors import ConflictError
from server.queue import JobQueue, procs_of
from server.schemas.jobs import CheckpointOut, JobError, JobOut, Progress
from server.services.limits import check_active_jobs, check_spec_limits, check_storage
from server.services.specs import check_references, parse_spec, total_steps
from server.storage import signed_query

log = logging.getLogger("gro.api")


def submit_job(
    session: Session,
    owner: Owner,
    document: dict[str, Any],
    settings: Settings,
    **fields: Any,
) -> Job:
    """Validate and store a queued job (flushed; the caller commits, then `enqueue`s)."""
    spec = parse_spec(document)
    datasets = check_references(session, owner, spec, settings)
    steps = total_steps(spec, session, owner)
    check_spec_limits(spec, settings, steps)
    check_active_jobs(session, owner, settings)
    check_storage(session, owner, settings)
    return create_job(
        session,
        owner,
        spec.model_dump(mode="json"),
        method=spec.method,
        datasets=datasets,
        total_steps=steps,
        **fields,
    )


def start_job(
    session: Session, queue: JobQueue, owner: Owner, document: dict[str, Any], settings: Settings
) -> Job:
    """Submit a job document: stored as `queued` and committed, then its task sent."""
    job = submit_job(session, owner, document, settings)
    session.commit()
    enqueue(session, queue, job)
    return job


def enqueue(session: Session, queue: JobQueue, job: Job) -> bool:
    """Send the job's task, after its row is committed (a worker must find it); whether the
    broker took it.

    A broker that is down does not fail the request: the job is stored and queued, and the
    workers' reconciler sends it again once the broker is back.
    """
    try:
        queue.enqueue(job.id, job.kind, procs_of(job.spec) if job.kind == "train" else 1)
    except Exception as exc:  # any broker failure: the reconciler recovers the job later
        log.warning("enqueue of %s failed: %s", job.id, exc)
        mark_not_enqueued(session, job.id)
        add_event(session, job.id, "enqueue_failed", f"broker unreachable ({exc}); will retry")
        session.commit()
        return False
    return True


def cancel_job(session: Session, job: Job) -> Job:
    """Cancel a queued job at once, or ask a running one to stop after its current step;
    ConflictError for a finished job."""
    if not request_cancel(session, job):
        raise ConflictError("job_finished", f"job {job.id} already {job.status}")
    session.commit()
    session.refresh(job)
    return job


def pause_job(session: Session, job: Job) -> Job:
    """Pause a queued job at once, or ask a running one to stop after its current step with a
    checkpoint (it ends `paused`); ConflictError for any other status."""
    if not request_pause(session, job):
        raise ConflictError(
            "not_pausable", f"job {job.id} is {job.status}; only queued or running jobs pause"
        )
    session.commit()
    session.refresh(job)
    return job


def resume_job(session: Session, queue: JobQueue, job: Job) -> Job:
    """Queue a paused, failed or cancelled job again, to continue from its last checkpoint;
    ConflictError for any other status."""
    if not request_resume(session, job):
        raise ConflictError(
            "not_resumable",
            f"job {job.id} is {job.status}; only paused, failed or cancelled jobs resume",
        )
    session.commit()
    enqueue(session, queue, job)
    session.refresh(job)
    return job


def job_error(job: Job) -> JobError | None:
    if job.error_code is None:
        return None
    return JobError(code=job.error_code, message=job.error_message or "")


def job_out(job: Job) -> JobOut:
    return JobOut(
        id=job.id,
        name=job.name,
        method=job.method,
        status=job.status,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        progress=Progress(step=job.step, total_steps=job.total_steps, eta_seconds=job.eta_seconds),
        error=job_error(job),
        final_metrics=job.final_metrics or {},
        spec=job.spec,
        comparison_id=job.comparison_id,
        variant=job.variant,
        seed=job.seed,
        cancel_requested=job.cancel_requested,
        attempts=job.attempts,
    )


def checkpoint_out(checkpoint: Checkpoint, secret: str, base_url: str) -> CheckpointOut:
    """The checkpoint with a signed download link (valid for an hour) under `base_url`."""
    query = signed_query(secret, checkpoint.id)
    return CheckpointOut(
        id=checkpoint.id,
        job_id=checkpoint.job_id,
        step=checkpoint.step,
        bytes=checkpoint.bytes,
        created_at=checkpoint.created_at,
        download_url=f"{base_url}v1/checkpoints/{checkpoint.id}/download?{query}",
    )
