"""Reads the OpenAI surface needs in its own order: a job's events newest first (OpenAI's
cursor walks back in time), and the metrics recorded at given steps."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db.models import Dataset, Job, JobEvent, Metric, Owner
from server.db.owners import visible
from server.db.pages import page


def events_newest_first(
    session: Session, job_id: str, before: int | None, limit: int
) -> tuple[list[JobEvent], bool]:
    """Up to `limit` events older than event `before`, newest first, and whether more follow."""
    query = select(JobEvent).where(JobEvent.job_id == job_id)
    if before is not None:
        query = query.where(JobEvent.id < before)
    rows = list(session.scalars(query.order_by(JobEvent.id.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def metrics_at(
    session: Session, job_id: str, steps: Iterable[int]
) -> dict[int, dict[str, float | None]]:
    """{step: {name: value}} for every metric recorded at each of `steps`."""
    wanted = sorted(set(steps))
    out: dict[int, dict[str, float | None]] = {step: {} for step in wanted}
    if not wanted:
        return out
    query = select(Metric.step, Metric.name, Metric.value).where(
        Metric.job_id == job_id, Metric.step.in_(wanted)
    )
    for step, name, value in session.execute(query):
        out[step][name] = value
    return out


def datasets_page(
    session: Session, owner: Owner, after: str | None, limit: int, order: str
) -> tuple[list[Dataset], bool]:
    """Datasets the owner may see, newest first (`desc`) or oldest first (`asc`), after the
    cursor id; and whether more follow."""
    query = visible(select(Dataset), Dataset, owner)
    if order == "desc":
        return page(session, query, Dataset.id, after, limit)
    if after:
        query = query.where(Dataset.id > after)
    rows = list(session.scalars(query.order_by(Dataset.id).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def jobs_page(
    session: Session, owner: Owner, after: str | None, limit: int, metadata: dict[str, str]
) -> tuple[list[Job], bool]:
    """Training jobs newest first whose OpenAI `metadata` holds every key: value given."""
    query = visible(select(Job), Job, owner).where(Job.kind == "train")
    for key, value in metadata.items():
        query = query.where(Job.openai[("metadata", key)].as_string() == value)
    return page(session, query, Job.id, after, limit)
