"""Job rows: creation, listing, and the state changes the API, workers and reconciler make.

Every transition is one conditional UPDATE (`... WHERE status = 'queued'`), so two processes
racing for the same job cannot both win: a redelivered message or a second worker finds the
row already claimed and does nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, bindparam, case, func, or_, select, update
from sqlalchemy.orm import Session

from server.db.base import utcnow
from server.db.ids import new_id
from server.db.models import (
    CANCELLED,
    FAILED,
    PAUSED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    Job,
    JobDataset,
    JobEvent,
    Owner,
)
from server.db.owners import visible
from server.db.pages import page


def add_event(
    session: Session, job_id: str, kind: str, message: str, step: int | None = None
) -> None:
    session.add(JobEvent(job_id=job_id, kind=kind, message=message, step=step))


def create_job(
    session: Session,
    owner: Owner,
    spec: dict[str, Any],
    *,
    kind: str = "train",
    method: str,
    datasets: Sequence[str] = (),
    **fields: Any,
) -> Job:
    """A queued job (flushed, not committed: the caller commits, then enqueues)."""
    job = Job(
        id=new_id(kind if kind in ("evaluation", "generation") else "job"),
        owner_id=owner.id,
        kind=kind,
        method=method,
        name=fields.pop("name", None) or spec.get("name"),
        spec=spec,
        status=QUEUED,
        # Set with the row: the message goes out right after the commit, and the happy path
        # then needs no second write (a failed send clears it again).
        enqueued_at=utcnow(),
        total_steps=fields.pop("total_steps", None),
        **fields,
    )
    session.add(job)
    session.flush()
    for dataset_id in dict.fromkeys(datasets):
        session.add(JobDataset(job_id=job.id, dataset_id=dataset_id))
    add_event(session, job.id, "created", f"{kind} job created ({method})")
    return job


@functools.cache
def _job_by_id(admin: bool, any_kind: bool) -> Select[tuple[Job]]:
    # Built once per shape: every request for a job runs one (see owners._OWNER_BY_KEY).
    query = select(Job).where(Job.id == bindparam("job_id"))
    if not admin:
        query = query.where(Job.owner_id == bindparam("owner_id"))
    return query if any_kind else query.where(Job.kind == bindparam("kind"))


def get_job(session: Session, owner: Owner, job_id: str, kind: str | None = "train") -> Job | None:
    """The job if it exists, is of `kind` (None: any) and `owner` may see it."""
    params: dict[str, str] = {"job_id": job_id}
    if not owner.is_admin:
        params["owner_id"] = owner.id
    if kind is not None:
        params["kind"] = kind
    return session.scalar(_job_by_id(owner.is_admin, kind is None), params)


def list_jobs(
    session: Session,
    owner: Owner,
    *,
    after: str | None = None,
    limit: int = 20,
    kind: str = "train",
    **filters: str | None,
) -> tuple[list[Job], bool]:
    """Newest first; filters: status, method (exact), name (case-insensitive substring),
    comparison_id (exact)."""
    query = visible(select(Job), Job, owner).where(Job.kind == kind)
    for column in ("status", "method", "comparison_id"):
        if filters.get(column):
            query = query.where(getattr(Job, column) == filters[column])
    if filters.get("name"):
        query = query.where(Job.name.ilike(f"%{filters['name']}%"))
    return page(session, query, Job.id, after, limit)


def list_version(session: Session, owner: Owner, kind: str = "train") -> tuple[int, str, int]:
    """What changes whenever any job `owner` may list changes: how many there are, the newest
    id (ids only grow), and the sum of their row versions (every update adds one). One
    aggregate read, instead of reading and encoding a page."""
    params = {"kind": kind} if owner.is_admin else {"kind": kind, "owner_id": owner.id}
    count, newest, versions = session.execute(_list_version(owner.is_admin), params).one()
    return count, newest or "", int(versions)


@functools.cache
def _list_version(admin: bool) -> Select[Any]:
    # Built once per shape: every poll of the job list runs one (see get_job).
    query = select(
        func.count(), func.max(Job.id), func.coalesce(func.sum(Job.row_version), 0)
    ).where(Job.kind == bindparam("kind"))
    return query if admin else query.where(Job.owner_id == bindparam("owner_id"))


def job_status(session: Session, job_id: str) -> str | None:
    """The job's status (None if there is no such job): one primary-key read."""
    return session.scalar(select(Job.status).where(Job.id == job_id))


def count_by_status(session: Session) -> dict[str, int]:
    """How many jobs of every kind are in each status (statuses with none are absent)."""
    rows = session.execute(select(Job.status, func.count()).group_by(Job.status)).all()
    return {status: count for status, count in rows}


# --- transitions ---------------------------------------------------------------------------


def mark_not_enqueued(session: Session, job_id: str) -> None:
    """The job's message could not be sent: the reconciler sends it (enqueued_at is null)."""
    session.execute(update(Job).where(Job.id == job_id).values(enqueued_at=None))


def request_cancel(session: Session, job: Job) -> bool:
    """Cancel a queued job now, or ask a running one's worker to stop; False if finished."""
    if _transition(session, job.id, QUEUED, status=CANCELLED, finished_at=utcnow()):
        add_event(session, job.id, "cancelled", "cancelled before it started")
        return True
    if _transition(session, job.id, PAUSED, status=CANCELLED, finished_at=utcnow()):
        add_event(session, job.id, "cancelled", "cancelled while paused")
        return True
    if _transition(session, job.id, RUNNING, cancel_requested=True, pause_requested=False):
        add_event(session, job.id, "cancel_requested", "cancel requested; stops after this step")
        return True
    return False


def request_pause(session: Session, job: Job) -> bool:
    """Ask a running job to stop after its current step with a checkpoint, ending `paused`
    (the same stop as a cancel: the worker sees cancel_requested); a queued job pauses at once.
    False for any other status, or a running job already asked to cancel."""
    if _transition(session, job.id, QUEUED, status=PAUSED):
        add_event(session, job.id, "paused", "paused before it started")
        return True
    changed = session.execute(
        update(Job)
        .where(Job.id == job.id, Job.status == RUNNING, Job.cancel_requested.is_(False))
        .values(cancel_requested=True, pause_requested=True)
    ).rowcount
    if changed:
        add_event(session, job.id, "pause_requested", "pause requested; stops after this step")
    return bool(changed)


def request_resume(session: Session, job: Job) -> bool:
    """Queue a failed or cancelled job again, to continue from its last checkpoint."""
    changed = session.execute(
        update(Job)
        .where(Job.id == job.id, Job.status.in_((FAILED, CANCELLED, PAUSED)))
        .values(
            status=QUEUED,
            resume=True,
            cancel_requested=False,
            pause_requested=False,
            error_code=None,
            error_message=None,
            finished_at=None,
            enqueued_at=utcnow(),
        )
    ).rowcount
    if changed:
        add_event(session, job.id, "resume_requested", "queued again; resumes from its checkpoint")
    return bool(changed)


def fail_queued(session: Session, job_id: str, code: str, message: str) -> bool:
    """queued → failed without a run (its spec names something that is gone)."""
    changed = _transition(
        session,
        job_id,
        QUEUED,
        status=FAILED,
        error_code=code,
        error_message=message,
        finished_at=utcnow(),
    )
    if changed:
        add_event(session, job_id, "failed", message)
    return changed


def claim(session: Session, job_id: str, worker: str) -> int | None:
    """queued → running for `worker`; the attempt number that owns the job, None if taken."""
    now = utcnow()
    changed = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == QUEUED)
        .values(
            status=RUNNING,
            worker=worker,
            attempts=Job.attempts + 1,
            heartbeat_at=now,
            started_at=now,
            finished_at=None,
        )
    ).rowcount
    if not changed:
        return None
    return session.scalar(select(Job.attempts).where(Job.id == job_id))


def owned(job_id: str, attempt: int) -> Any:
    """The WHERE clause that holds while `attempt` still owns the running job."""
    return (Job.id == job_id) & (Job.status == RUNNING) & (Job.attempts == attempt)


def beat(session: Session, job_id: str, attempt: int, **progress: Any) -> bool:
    """Heartbeat (+ progress fields); False once the attempt lost the job (re-queued or
    finished elsewhere), which tells the worker to stop."""
    values = {"heartbeat_at": utcnow(), **progress}
    return bool(
        session.execute(update(Job).where(owned(job_id, attempt)).values(**values)).rowcount
    )


def finish(session: Session, job_id: str, attempt: int, status: str, **fields: Any) -> bool:
    """running → succeeded | failed | cancelled, only for the attempt that owns the job; a
    run stopped by a pause request ends `paused` instead of `cancelled`, with no finish time."""
    if status == CANCELLED:
        return _stop(session, job_id, attempt, **fields)
    values = {
        "status": status,
        "finished_at": utcnow(),
        "cancel_requested": False,
        "pause_requested": False,  # a request the run ended before honouring
        **fields,
    }
    done = bool(
        session.execute(update(Job).where(owned(job_id, attempt)).values(**values)).rowcount
    )
    if done and status == SUCCEEDED:
        add_event(session, job_id, "succeeded", "the job has successfully completed")
    return done


def _stop(session: Session, job_id: str, attempt: int, **fields: Any) -> bool:
    """A run stopped between steps: paused when that was asked for, else cancelled (one
    conditional update decides, so a cancel racing a pause cannot leave both half-applied)."""
    values = {
        "status": case((Job.pause_requested, PAUSED), else_=CANCELLED),
        "finished_at": case((Job.pause_requested, None), else_=utcnow()),
        "cancel_requested": False,
        "pause_requested": False,
        **fields,
    }
    done = bool(
        session.execute(update(Job).where(owned(job_id, attempt)).values(**values)).rowcount
    )
    if done and job_status(session, job_id) == PAUSED:
        add_event(session, job_id, "paused", "paused; resume continues from its checkpoint")
    return done


def cancel_requested(session: Session, job_id: str) -> bool:
    return bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))


def _transition(session: Session, job_id: str, from_status: str, **values: Any) -> bool:
    query = update(Job).where(Job.id == job_id, Job.status == from_status).values(**values)
    return bool(session.execute(query).rowcount)


# --- recovery ------------------------------------------------------------------------------


def _sent_before(older_than: datetime) -> Any:
    return or_(Job.enqueued_at.is_(None), Job.enqueued_at < older_than)


def lost_queued(session: Session, older_than: datetime) -> list[Job]:
    """Queued jobs whose message was sent before `older_than`, or never sent."""
    return list(session.scalars(select(Job).where(Job.status == QUEUED, _sent_before(older_than))))


def take_resend(session: Session, job_id: str, older_than: datetime) -> bool:
    """Mark a lost job as sent now; False when another reconciler got there first."""
    query = (
        update(Job)
        .where(Job.id == job_id, Job.status == QUEUED, _sent_before(older_than))
        .values(enqueued_at=utcnow())
    )
    return bool(session.execute(query).rowcount)


def requeue_dead(
    session: Session, older_than: datetime, max_requeues: int | None = None
) -> list[Job]:
    """Running jobs whose heartbeat stopped before `older_than`, put back in the queue to
    resume from their checkpoint. Returns them (re-read, now queued). A job already queued
    again `max_requeues` times fails instead, with `worker_lost`."""
    dead = list(
        session.scalars(select(Job).where(Job.status == RUNNING, Job.heartbeat_at < older_than))
    )
    requeued = []
    for job in dead:
        # Read before the update: the ORM update refreshes these objects (worker becomes None).
        worker, beat_at = job.worker, job.heartbeat_at
        silent = (utcnow() - beat_at).total_seconds() if beat_at else 0.0
        who = f"worker {worker}" if worker else "its worker (unknown)"
        if requeue_attempt(session, job, f"{who} silent for {silent:.0f}s", max_requeues):
            requeued.append(job)
    return requeued


def requeue_attempt(
    session: Session, job: Job, lost: str, max_requeues: int | None, attempt: int | None = None
) -> bool:
    """running → queued (resume from its checkpoint) for the attempt that owns the job (the
    current one, or `attempt`), with an event saying why (`lost`); a job queued again
    `max_requeues` times fails `worker_lost` instead. Whether it was queued again."""
    attempts, step = attempt or job.attempts, job.step
    if max_requeues is not None and attempts > max_requeues:
        _fail_lost(session, job.id, attempts, lost, max_requeues)
        return False
    changed = session.execute(
        update(Job)
        .where(owned(job.id, attempts))
        .values(status=QUEUED, resume=True, worker=None, enqueued_at=utcnow())
    ).rowcount
    if changed:
        add_event(session, job.id, "requeued", f"{lost}; queued again to resume", step=step)
    return bool(changed)


def attempt_running(session: Session, job_id: str, attempt: int) -> bool:
    """Whether `attempt` still owns the running job (read only: a machine that joined a job
    checks it, the job's first worker beats)."""
    return session.scalar(select(Job.id).where(owned(job_id, attempt))) is not None


def _fail_lost(session: Session, job_id: str, attempts: int, lost: str, limit: int) -> None:
    """running → failed `worker_lost`: every attempt lost its worker (the job itself may be
    what kills them), and it was queued again as often as allowed."""
    message = (
        f"attempt {attempts} lost: {lost}; all {attempts} attempts (1-{attempts}) lost their "
        f"worker and the job was queued again {attempts - 1} times, the limit "
        f"(GRO_MAX_REQUEUES={limit}): not queued again"
    )
    changed = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == RUNNING, Job.attempts == attempts)
        .values(
            status=FAILED,
            finished_at=utcnow(),
            cancel_requested=False,
            error_code="worker_lost",
            error_message=message,
        )
    ).rowcount
    if changed:
        add_event(session, job_id, "failed", message)


def ago(seconds: float) -> datetime:
    return utcnow() - timedelta(seconds=seconds)
