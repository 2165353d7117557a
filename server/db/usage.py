"""What one owner holds now: active jobs and bytes on storage (what quotas are checked against).
Counted over the owner's own rows, also for admins (a quota is per owner, not per view)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.db.models import ACTIVE_STATUSES, Checkpoint, Dataset, Job, Owner


def active_jobs(session: Session, owner: Owner) -> int:
    """Queued and running jobs and evaluations of `owner` (flushed ones count too)."""
    query = select(func.count()).where(Job.owner_id == owner.id, Job.status.in_(ACTIVE_STATUSES))
    return int(session.scalar(query) or 0)


def storage_bytes(session: Session, owner: Owner) -> int:
    """Bytes of `owner`'s datasets and of the checkpoints of its jobs."""
    datasets = select(func.coalesce(func.sum(Dataset.bytes), 0)).where(Dataset.owner_id == owner.id)
    checkpoints = (
        select(func.coalesce(func.sum(Checkpoint.bytes), 0))
        .join(Job, Job.id == Checkpoint.job_id)
        .where(Job.owner_id == owner.id)
    )
    return int(session.scalar(datasets) or 0) + int(session.scalar(checkpoints) or 0)
