"""Metric series read back downsampled *inside the database*: a 100k-point series becomes
~1000 rows before it reaches Python (fetching every point costs more than the query).

Buckets split the step range evenly; each keeps its lowest and highest point (spikes survive,
a mean would hide them), plus the series' first and last points. The aggregation is written
per dialect: SQLite returns the row of a MIN()/MAX() aggregate's value as a bare column, and
PostgreSQL compares arrays, so min(ARRAY[value, step]) is the lowest value with its step;
both are one pass over the series' index range, without a sort.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from server.db.models import Metric

Point = tuple[int, float | None]

# Each query also counts the bucket's points (null values included), so the total needs no
# extra pass.
_SQLITE_EXTREMES = text(
    """
    SELECT step, MIN(value), COUNT(*) FROM metrics
    WHERE job_id = :job AND name = :name AND step >= :lo
    GROUP BY ((step - :lo) * :buckets) / :span
    UNION ALL
    SELECT step, MAX(value), 0 FROM metrics
    WHERE job_id = :job AND name = :name AND step >= :lo
    GROUP BY ((step - :lo) * :buckets) / :span
    """
)
_POSTGRES_EXTREMES = text(
    """
    SELECT min(ARRAY[value, step::double precision]) FILTER (WHERE value IS NOT NULL),
           max(ARRAY[value, step::double precision]) FILTER (WHERE value IS NOT NULL),
           count(*)
    FROM metrics
    WHERE job_id = :job AND name = :name AND step >= :lo
    GROUP BY ((step - :lo)::bigint * :buckets) / :span
    """
)


def _where(job_id: str, name: str, min_step: int | None) -> list[Any]:
    clauses = [Metric.job_id == job_id, Metric.name == name]
    if min_step is not None:
        clauses.append(Metric.step >= min_step)
    return clauses


def _extremes(session: Session, params: dict[str, Any]) -> tuple[list[Point], int]:
    """The lowest and highest non-null point of every bucket, and how many points there are."""
    if session.get_bind().dialect.name == "postgresql":
        rows = session.execute(_POSTGRES_EXTREMES, params).all()
        # A bucket holding only nulls has no extremes (the FILTER leaves the arrays null).
        pairs = [a for low, high, _ in rows for a in (low, high) if a is not None]
        points = [(int(step), value) for value, step in pairs]
    else:
        rows = session.execute(_SQLITE_EXTREMES, params).all()
        points = [(int(step), value) for step, value, _ in rows if value is not None]
    return points, sum(count for *_, count in rows)


def read_series(
    session: Session, job_id: str, name: str, max_points: int, min_step: int | None = None
) -> tuple[list[Point], int]:
    """(points in step order, points stored): all of them when they fit in `max_points`,
    else the first, the last, and the extremes of (max_points − 2) / 2 step buckets."""
    where = _where(job_id, name, min_step)
    # min/max of an index prefix are two probes; count(*) would walk the whole range.
    bounds = select(func.min(Metric.step), func.max(Metric.step)).where(*where)
    first, last = session.execute(bounds).one()
    if first is None:
        return [], 0
    buckets = max(1, (max_points - 2) // 2)
    params = {
        "job": job_id,
        "name": name,
        "lo": first,
        "span": last - first + 1,
        "buckets": buckets,
    }
    extremes, total = _extremes(session, params)
    if total <= max_points:
        every = select(Metric.step, Metric.value).where(*where).order_by(Metric.step)
        return [(step, value) for step, value in session.execute(every)], total
    ends = select(Metric.step, Metric.value).where(*where, Metric.step.in_((first, last)))
    points = dict(extremes)
    points.update((step, value) for step, value in session.execute(ends))
    return sorted(points.items()), total
