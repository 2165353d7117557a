"""Submitting jobs, and how a job row is shown."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from server.config import Settings
from server.db.jobs import add_event, create_job, mark_not_enqueued
from server.db.models import Job, Owner
from server.queue import JobQueue
from server.schemas.jobs import JobError, JobOut, Progress
from server.services.specs import check_references, parse_spec, total_steps

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
    return create_job(
        session,
        owner,
        spec.model_dump(mode="json"),
        method=spec.method,
        datasets=datasets,
        total_steps=total_steps(spec, session, owner),
        **fields,
    )


def enqueue(session: Session, queue: JobQueue, job: Job) -> None:
    """Send the job's task, after its row is committed (a worker must find it).

    A broker that is down does not fail the request: the job is stored and queued, and the
    workers' reconciler sends it again once the broker is back.
    """
    try:
        queue.enqueue(job.id, job.kind)
    except Exception as exc:  # any broker failure: the reconciler recovers the job later
        log.warning("enqueue of %s failed: %s", job.id, exc)
        mark_not_enqueued(session, job.id)
        add_event(session, job.id, "enqueue_failed", f"broker unreachable ({exc}); will retry")
        session.commit()


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
