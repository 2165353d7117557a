"""What jobs produce: metric points, samples, events and checkpoints; written in batches by
workers (idempotent: a replayed batch changes nothing) and read back by the API."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Insert, and_, delete, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from server.db.models import Checkpoint, Job, JobEvent, Metric, Owner, Sample
from server.db.owners import visible

SAMPLE_FIELDS = ("prompt", "completion", "reward", "advantage", "anchor_distance", "weight")


def _insert(session: Session, table: Any) -> Insert:
    """INSERT with the dialect's ON CONFLICT support (SQLite and PostgreSQL share the syntax)."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def finite(value: Any) -> float | None:
    """A float, or None for NaN/±inf/None (JSON and SQLite cannot hold them)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


# PostgreSQL: the points travel as three arrays in one statement; a row-per-statement
# executemany is ~1.5x slower, and a 1000-row VALUES list costs more to compile than to run.
_POSTGRES_UPSERT = text(
    """
    INSERT INTO metrics (job_id, name, step, value)
    SELECT :job, * FROM unnest(CAST(:names AS text[]), CAST(:steps AS integer[]),
                               CAST(:values AS double precision[]))
    ON CONFLICT (job_id, name, step) DO UPDATE SET value = excluded.value
    """
)


def _metrics_changed(session: Session, job_id: str, *, rewritten: bool = False) -> None:
    """Bump the job's metrics version in the writer's transaction: readers that see the new
    points see the new version too, so a cached response is never served for them. A delete
    or a write over existing points bumps the epoch too: series kept from earlier points (the
    API's, brought up to date from new points only) start again."""
    values = {"metrics_version": Job.metrics_version + 1}
    if rewritten:
        values["metrics_epoch"] = Job.metrics_epoch + 1
    session.execute(update(Job).where(Job.id == job_id).values(**values))


def _rewrites(session: Session, job_id: str, rows: list[tuple[int, str, float | None]]) -> bool:
    """Whether a row lands at or before its series' last stored step (not an append). One
    index probe per series: a max() per name, as a GROUP BY would read every point."""
    lowest: dict[str, int] = {}
    for step, name, _ in rows:
        lowest[name] = min(lowest.get(name, step), step)
    for name, step in lowest.items():
        top = session.scalar(
            select(func.max(Metric.step)).where(Metric.job_id == job_id, Metric.name == name)
        )
        if top is not None and step <= top:
            return True
    return False


def write_metrics(session: Session, job_id: str, points: Iterable[tuple[int, str, float]]) -> int:
    """Upsert (step, name, value) points; a point written twice keeps the last value."""
    rows = [(int(step), name, finite(value)) for step, name, value in points]
    if not rows:
        return 0
    _metrics_changed(session, job_id, rewritten=_rewrites(session, job_id, rows))
    if session.get_bind().dialect.name == "postgresql":
        steps, names, values = zip(*rows, strict=True)
        params = {"job": job_id, "names": list(names), "steps": list(steps), "values": list(values)}
        session.execute(_POSTGRES_UPSERT, params)
        return len(rows)
    statement = sqlite.insert(Metric)
    statement = statement.on_conflict_do_update(
        index_elements=["job_id", "name", "step"], set_={"value": statement.excluded.value}
    )
    keys = ("step", "name", "value")
    session.execute(
        statement, [{"job_id": job_id, **dict(zip(keys, r, strict=True))} for r in rows]
    )
    return len(rows)


def write_samples(session: Session, job_id: str, step: int, samples: Sequence[dict]) -> int:
    """Insert one step's samples; a replayed step (same job, step, index) is ignored."""
    rows = [_sample_row(job_id, step, i, sample) for i, sample in enumerate(samples)]
    if rows:
        statement = _insert(session, Sample).on_conflict_do_nothing(
            index_elements=["job_id", "step", "idx"]
        )
        session.execute(statement, rows)
    return len(rows)


def _sample_row(job_id: str, step: int, idx: int, sample: dict) -> dict[str, Any]:
    extra = {k: v for k, v in sample.items() if k not in SAMPLE_FIELDS and k != "step"}
    return {
        "job_id": job_id,
        "step": step,
        "idx": idx,
        "prompt": str(sample.get("prompt", "")),
        "completion": str(sample.get("completion", "")),
        **{k: finite(sample.get(k)) for k in SAMPLE_FIELDS[2:]},
        "extra": extra,
    }


def delete_after(session: Session, job_id: str, step: int) -> None:
    """Forget metric points and samples past `step`: a resumed run writes them again."""
    _metrics_changed(session, job_id, rewritten=True)
    session.execute(delete(Metric).where(Metric.job_id == job_id, Metric.step > step))
    session.execute(delete(Sample).where(Sample.job_id == job_id, Sample.step > step))


def add_checkpoint(session: Session, checkpoint: Checkpoint) -> None:
    statement = _insert(session, Checkpoint).on_conflict_do_nothing(
        index_elements=["job_id", "step"]
    )
    session.execute(
        statement,
        [{c: getattr(checkpoint, c) for c in ("id", "job_id", "step", "path", "bytes")}],
    )


def prune_checkpoints(session: Session, job_id: str, kept_steps: Iterable[int]) -> None:
    """Drop rows of checkpoints the trainer rotated away (only the last K stay on disk)."""
    session.execute(
        delete(Checkpoint).where(
            Checkpoint.job_id == job_id, Checkpoint.step.not_in(list(kept_steps))
        )
    )


# --- reads ---------------------------------------------------------------------------------


def last_event_id(session: Session, job_id: str) -> int:
    """The id of the job's newest event; 0 when it has none."""
    return session.scalar(select(func.max(JobEvent.id)).where(JobEvent.job_id == job_id)) or 0


def list_events(session: Session, job_id: str, after: int | None, limit: int) -> list[JobEvent]:
    query = select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)
    if after is not None:
        query = query.where(JobEvent.id > after)
    return list(session.scalars(query.limit(limit)))


# A loose index scan: one probe of the (job, name, step) key per distinct name, instead of
# reading every point of the job (600k rows for 6 series of 100k steps).
_NAMES = text(
    """
    WITH RECURSIVE names(name) AS (
        SELECT MIN(name) FROM metrics WHERE job_id = :job
        UNION ALL
        SELECT (SELECT MIN(m.name) FROM metrics m WHERE m.job_id = :job AND m.name > names.name)
        FROM names WHERE names.name IS NOT NULL
    )
    SELECT name FROM names WHERE name IS NOT NULL
    """
)


def last_event(session: Session, job_id: str) -> JobEvent | None:
    query = select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id.desc())
    return session.scalar(query.limit(1))


def metric_names(session: Session, job_id: str) -> list[str]:
    """The job's metric names, sorted."""
    return list(session.scalars(_NAMES, {"job": job_id}))


def list_samples(session: Session, job_id: str, step: int | None, limit: int) -> list[Sample]:
    """A step's samples in order; without a step, the latest step's."""
    if step is None:
        step = session.scalar(select(func.max(Sample.step)).where(Sample.job_id == job_id))
    query = select(Sample).where(Sample.job_id == job_id, Sample.step == step).order_by(Sample.idx)
    return list(session.scalars(query.limit(limit)))


def sample_steps(session: Session, job_id: str) -> list[int]:
    query = select(Sample.step).where(Sample.job_id == job_id).distinct().order_by(Sample.step)
    return list(session.scalars(query))


def samples_after(
    session: Session, job_id: str, after: tuple[int, int] | None, limit: int
) -> list[Sample]:
    """Up to `limit` samples of the job after the (step, index) `after`, in step and index
    order: one page of a read that several short sessions share (the (job, step, idx) key's
    index gives the order, so each page is a range read)."""
    query = select(Sample).where(Sample.job_id == job_id)
    if after is not None:
        step, idx = after
        query = query.where(or_(Sample.step > step, and_(Sample.step == step, Sample.idx > idx)))
    return list(session.scalars(query.order_by(Sample.step, Sample.idx).limit(limit)))


def list_checkpoints(session: Session, job_id: str) -> list[Checkpoint]:
    query = select(Checkpoint).where(Checkpoint.job_id == job_id).order_by(Checkpoint.step)
    return list(session.scalars(query))


def get_checkpoint(session: Session, owner: Owner, checkpoint_id: str) -> Checkpoint | None:
    """The checkpoint if `owner` may see its job."""
    query = visible(select(Checkpoint).join(Job, Job.id == Checkpoint.job_id), Job, owner)
    return session.scalar(query.where(Checkpoint.id == checkpoint_id))


def checkpoint_by_id(session: Session, checkpoint_id: str) -> Checkpoint | None:
    """The checkpoint whoever owns it (a signed link already proved the right to it)."""
    return session.get(Checkpoint, checkpoint_id)


def latest_checkpoint(session: Session, job_id: str) -> Checkpoint | None:
    query = (
        select(Checkpoint)
        .where(Checkpoint.job_id == job_id)
        .order_by(Checkpoint.step.desc())
        .limit(1)
    )
    return session.scalar(query)
