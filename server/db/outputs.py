"""What jobs produce: metric points, samples, events and checkpoints; written in batches by
workers (idempotent: a replayed batch changes nothing) and read back by the API."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from sqlalchemy import Insert, delete, func, select
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


def write_metrics(session: Session, job_id: str, points: Iterable[tuple[int, str, float]]) -> int:
    """Upsert (step, name, value) points; a point written twice keeps the last value."""
    rows = [
        {"job_id": job_id, "step": step, "name": name, "value": finite(value)}
        for step, name, value in points
    ]
    if rows:
        statement = _insert(session, Metric)
        statement = statement.on_conflict_do_update(
            index_elements=["job_id", "name", "step"], set_={"value": statement.excluded.value}
        )
        session.execute(statement, rows)
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


def list_events(session: Session, job_id: str, after: int | None, limit: int) -> list[JobEvent]:
    query = select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)
    if after is not None:
        query = query.where(JobEvent.id > after)
    return list(session.scalars(query.limit(limit)))


def metric_names(session: Session, job_id: str) -> list[str]:
    query = select(Metric.name).where(Metric.job_id == job_id).distinct().order_by(Metric.name)
    return list(session.scalars(query))


def read_series(
    session: Session, job_id: str, names: Sequence[str], min_step: int | None = None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name -> (steps, values) in step order; null values come back as NaN."""
    query = (
        select(Metric.name, Metric.step, Metric.value)
        .where(Metric.job_id == job_id, Metric.name.in_(names))
        .order_by(Metric.name, Metric.step)
    )
    if min_step is not None:
        query = query.where(Metric.step >= min_step)
    # Plain tuples from the driver: ORM row objects cost more than the query at 100k points.
    rows = session.connection().execute(query).all()
    series: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if not rows:
        return series
    table = np.array([(r[1], np.nan if r[2] is None else r[2]) for r in rows], dtype=np.float64)
    labels = [r[0] for r in rows]
    start = 0
    for name in dict.fromkeys(labels):
        end = start + labels.count(name)  # rows are grouped by name
        series[name] = (table[start:end, 0].astype(np.int64), table[start:end, 1])
        start = end
    return series


def _first_extreme(values: np.ndarray, starts: np.ndarray, reduce: np.ufunc) -> np.ndarray:
    """Index of the first lowest (np.minimum) or highest (np.maximum) value of each segment."""
    extremes = reduce.reduceat(values, starts)  # (buckets,)
    segment = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(values))))
    hits = np.flatnonzero(values == extremes[segment])
    _, first = np.unique(segment[hits], return_index=True)
    return hits[first]


def downsample(
    steps: np.ndarray, values: np.ndarray, max_points: int
) -> tuple[np.ndarray, np.ndarray]:
    """At most `max_points` points: the first and last, and the lowest and highest value of
    each of (max_points − 2) / 2 equal-count buckets, in step order, so spikes survive (a mean
    would hide them). NaN points are never chosen as extremes."""
    n = len(steps)
    if n <= max_points:
        return steps, values
    buckets = max(1, (max_points - 2) // 2)
    size, extra = divmod(n, buckets)
    sizes = np.full(buckets, size)
    sizes[:extra] += 1  # the first buckets take the remainder, as np.array_split does
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    low = _first_extreme(np.where(np.isnan(values), np.inf, values), starts, np.minimum)
    high = _first_extreme(np.where(np.isnan(values), -np.inf, values), starts, np.maximum)
    keep = np.unique(np.concatenate([low, high, [0, n - 1]]))
    return steps[keep], values[keep]


def list_samples(session: Session, job_id: str, step: int | None, limit: int) -> list[Sample]:
    """A step's samples in order; without a step, the latest step's."""
    if step is None:
        step = session.scalar(select(func.max(Sample.step)).where(Sample.job_id == job_id))
    query = select(Sample).where(Sample.job_id == job_id, Sample.step == step).order_by(Sample.idx)
    return list(session.scalars(query.limit(limit)))


def sample_steps(session: Session, job_id: str) -> list[int]:
    query = select(Sample.step).where(Sample.job_id == job_id).distinct().order_by(Sample.step)
    return list(session.scalars(query))


def list_checkpoints(session: Session, job_id: str) -> list[Checkpoint]:
    query = select(Checkpoint).where(Checkpoint.job_id == job_id).order_by(Checkpoint.step)
    return list(session.scalars(query))


def get_checkpoint(session: Session, owner: Owner, checkpoint_id: str) -> Checkpoint | None:
    """The checkpoint if `owner` may see its job."""
    query = visible(select(Checkpoint).join(Job, Job.id == Checkpoint.job_id), Job, owner)
    return session.scalar(query.where(Checkpoint.id == checkpoint_id))


def latest_checkpoint(session: Session, job_id: str) -> Checkpoint | None:
    query = (
        select(Checkpoint)
        .where(Checkpoint.job_id == job_id)
        .order_by(Checkpoint.step.desc())
        .limit(1)
    )
    return session.scalar(query)
