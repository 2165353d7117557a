"""Running one job: claim it, resolve what its spec names, train or evaluate with gro_core,
and record how it ended. Celery tasks call these; so do tests, without Celery.

    claim (one session)   re-read the job, resolve its spec's ids, queued -> running, and for a
                          training job: find the checkpoint it continues from (once), drop the
                          outputs written after it (once), say so in a `claimed` event
    run                   gro_core trains from that checkpoint, DbWriter writes what it produces:
                          in a child process this one watches (worker.supervise), or inline
    finish                succeeded | cancelled | failed, only by the attempt that owns the job
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from server.config import Settings
from server.db import jobs as db_jobs
from server.db import outputs
from server.db.models import CANCELLED, FAILED, QUEUED, Job
from server.db.session import session_scope
from server.queue import CeleryQueue, JobQueue
from server.services.jobs import enqueue
from worker.callback import JobLostError
from worker.execute import execute, failure, job_dir, resume_point
from worker.launch import Node, Resources, free_port
from worker.refs import BadReferenceError, NotReadyError, resolve_generation, resolve_spec
from worker.supervise import Outcome, supervise

__all__ = [
    "REQUEUED",
    "SKIPPED",
    "WAITING",
    "claim",
    "failure",
    "job_dir",
    "run_evaluation_job",
    "run_generation_job",
    "run_train_job",
]

log = logging.getLogger("gro.worker")

SKIPPED, WAITING, REQUEUED = "skipped", "waiting", "requeued"


@dataclass
class Claimed:
    """A job this worker now owns: its resolved spec, stored row and attempt number, and for a
    training job the step it continues from."""

    document: dict[str, Any]
    job: Job
    attempt: int
    checkpoint: tuple[int, Path] | None = None
    """(step, directory) a training job continues from."""
    worker: str = ""
    """Who claimed it."""

    @property
    def step(self) -> int:
        return self.checkpoint[0] if self.checkpoint else 0


def _resolved(session: Session, settings: Settings, job: Job) -> dict[str, Any] | str:
    """The stored spec with every id replaced by a local path, or WAITING / FAILED."""
    stored = job.spec["evaluation_spec"] if job.kind == "evaluation" else job.spec
    try:
        if job.kind == "generation":
            return resolve_generation(session, Path(settings.storage_dir), job.spec["request"])
        return resolve_spec(session, Path(settings.storage_dir), stored)
    except NotReadyError as exc:
        _note_waiting(session, job, str(exc))
        return WAITING
    except BadReferenceError as exc:
        db_jobs.fail_queued(session, job.id, "bad_reference", str(exc))
        return FAILED


def _note_waiting(session: Session, job: Job, message: str) -> None:
    """One `waiting` event per wait, not one per retry."""
    last = outputs.last_event(session, job.id)
    if last is None or last.kind != "waiting":
        db_jobs.add_event(session, job.id, "waiting", message)


def _continue_from(session: Session, settings: Settings, claimed: Claimed, worker: str) -> None:
    """Where a claimed training job continues: its latest checkpoint when it resumes (the one
    lookup: the trainer, run with resume, continues from this same checkpoint), else the start.
    Outputs an earlier attempt wrote after it are dropped here, the only place that does."""
    job_id = claimed.job.id
    claimed.checkpoint = resume_point(session, settings, job_id) if claimed.job.resume else None
    outputs.delete_after(session, job_id, claimed.step)
    where = f"from step {claimed.step}" if claimed.step else "from the start"
    message = f"attempt {claimed.attempt} on {worker}, {where}"
    db_jobs.add_event(session, job_id, "claimed", message)


def claim(settings: Settings, job_id: str, kind: str, worker: str) -> Claimed | str:
    """Prepare and claim the job in one session (one transaction); SKIPPED when it is not
    queued (finished, cancelled, claimed by another worker, unknown), WAITING or FAILED when
    its spec names something not ready or gone."""
    with session_scope(settings.database_url) as session:
        job = session.get(Job, job_id)
        if job is None or job.status != QUEUED or job.kind != kind:
            return SKIPPED
        document = _resolved(session, settings, job)
        if isinstance(document, str):
            return document
        attempt = db_jobs.claim(session, job_id, worker)  # the conditional update: one winner
        if attempt is None:
            return SKIPPED
        claimed = Claimed(document, job, attempt, worker=worker)
        if kind == "train":
            _continue_from(session, settings, claimed, worker)
    return claimed


def _finish(settings: Settings, job_id: str, attempt: int, status: str, **fields: Any) -> None:
    with session_scope(settings.database_url) as session:
        if not db_jobs.finish(session, job_id, attempt, status, **fields):
            log.warning("job %s changed hands before attempt %s finished", job_id, attempt)
        if status == FAILED:
            db_jobs.add_event(session, job_id, "failed", fields["error_message"])
        if status == CANCELLED and "step" not in fields:
            message = "ended where it was: it did not reach a step boundary in time"
            # A stop asked for as a pause ended the job `paused`: the event says which.
            kind = db_jobs.job_status(session, job_id) or CANCELLED
            db_jobs.add_event(session, job_id, kind, message)


def _inline(settings: Settings, kind: str, claimed: Claimed) -> Outcome:
    """The attempt run in this process (GRO_JOB_ISOLATION=inline): only the rewards' time bound
    applies; a BaseException (the process dying, in tests) reaches the caller."""
    job_id, attempt = claimed.job.id, claimed.attempt
    try:
        fields = execute(settings, kind, job_id, attempt, claimed.document, claimed.checkpoint)
    except JobLostError:
        return Outcome("lost")
    except Exception as exc:
        code, message = failure(exc)
        return Outcome("failed", code=code, message=message)
    return Outcome("done", fields=fields)


def _launched(
    settings: Settings, claimed: Claimed, resources: Resources, queue: JobQueue | None
) -> Outcome:
    """A job of several processes: torchrun's agent in the supervised child starts them, its
    rendezvous on this machine (always in a child process, whatever GRO_JOB_ISOLATION says)."""
    job_id, attempt = claimed.job.id, claimed.attempt
    if resources.nnodes > 1:
        from worker.nodes import host

        node = host(settings, job_id, attempt, resources, claimed.worker, queue)
    else:
        endpoint = f"127.0.0.1:{free_port('127.0.0.1')}"
        node = Node(1, endpoint, True, settings.node_join_timeout_s)
    return supervise(settings, "train", job_id, attempt, claimed.document, claimed.checkpoint, node)


def _requeue(settings: Settings, job_id: str, attempt: int, why: str, queue: JobQueue) -> str:
    """Queue the attempt's job again (it resumes from its last checkpoint, the outputs after it
    dropped at the next claim) and send its message; FAILED once it was re-queued too often."""
    with session_scope(settings.database_url) as session:
        job = session.get(Job, job_id)
        if job is None or not db_jobs.requeue_attempt(
            session, job, why, settings.max_requeues, attempt
        ):
            return FAILED if db_jobs.job_status(session, job_id) == FAILED else SKIPPED
        session.commit()
        session.refresh(job)
        enqueue(session, queue, job)  # a broker that is down: the reconciler sends it later
    return REQUEUED


def _run_claimed(
    settings: Settings, kind: str, claimed: Claimed, queue: JobQueue | None = None
) -> str:
    """Run the claimed attempt, then record how it ended (never retried: a failure is the
    job's; a rank killed outright queues the job again)."""
    job_id, attempt = claimed.job.id, claimed.attempt
    resources = Resources.of(claimed.document) if kind == "train" else Resources()
    if resources.launched:
        outcome = _launched(settings, claimed, resources, queue)
    elif settings.job_isolation == "process":
        outcome = supervise(settings, kind, job_id, attempt, claimed.document, claimed.checkpoint)
    else:
        outcome = _inline(settings, kind, claimed)
    if outcome.kind == "lost":
        return SKIPPED  # re-queued elsewhere while this attempt ran: its new owner finishes
    if outcome.kind == "requeue":
        queue = queue or CeleryQueue(settings.broker_url)
        return _requeue(settings, job_id, attempt, outcome.message, queue)
    if outcome.kind == "cancelled":
        _finish(settings, job_id, attempt, CANCELLED)
        return CANCELLED
    if outcome.kind == "failed":
        log.warning("job %s failed: %s", job_id, outcome.message)
        fields = {"error_code": outcome.code, "error_message": outcome.message[:4000]}
        _finish(settings, job_id, attempt, FAILED, **fields)
        return FAILED
    assert outcome.fields is not None
    _finish(settings, job_id, attempt, **outcome.fields)
    return outcome.fields["status"]


def run_train_job(
    settings: Settings, job_id: str, worker: str, queue: JobQueue | None = None
) -> str:
    """Train one queued job to its end; returns its final status, SKIPPED, WAITING or
    REQUEUED (sent to `queue`, by default the broker's)."""
    claimed = claim(settings, job_id, "train", worker)
    if isinstance(claimed, str):
        return claimed
    return _run_claimed(settings, "train", claimed, queue)


def run_evaluation_job(settings: Settings, job_id: str, worker: str) -> str:
    """Evaluate one queued evaluation; its completions become the job's samples (step 0)."""
    claimed = claim(settings, job_id, "evaluation", worker)
    if isinstance(claimed, str):
        return claimed
    return _run_claimed(settings, "evaluation", claimed)


def run_generation_job(settings: Settings, job_id: str, worker: str) -> str:
    """Complete one queued generation's prompt with each of its models (samples of step 0)."""
    claimed = claim(settings, job_id, "generation", worker)
    if isinstance(claimed, str):
        return claimed
    return _run_claimed(settings, "generation", claimed)
