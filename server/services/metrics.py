"""Metric series for the API: every requested name, each downsampled on its own.

A dashboard polls this every second or so while a job trains, and the answer changes only when
a worker flushes new points, so an encoded answer is kept per (job, query) under the job's
`metrics_version` (bumped with every metric write): a poll that finds nothing new costs the
job's primary-key read, and one that sends the ETag back gets 304 without a body. A new
version's answer reads only the points written since the last (server.services.series_cache)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from server.db.models import Job
from server.db.outputs import metric_names
from server.db.series import Point, read_series
from server.schemas.jobs import MetricsOut, Series
from server.services.response_cache import Encoded, ResponseCache
from server.services.series_cache import Columns, SeriesCache


def _columns(points: list[Point], total: int) -> Columns:
    return [step for step, _ in points], [value for _, value in points], total


def metrics_out(
    session: Session,
    job: Job,
    names: list[str] | None,
    max_points: int,
    min_step: int | None = None,
    kept: SeriesCache | None = None,
) -> MetricsOut:
    """The job's series; whole series from `kept` (brought up to date from their new points
    only), a `min_step` range from the database."""
    job_id = job.id
    available = metric_names(session, job_id)
    wanted = [n for n in names if n in available] if names is not None else available
    if kept is not None and min_step is None:
        read = kept.read(session, job_id, job.metrics_epoch, wanted, max_points)
    else:
        read = {n: _columns(*read_series(session, job_id, n, max_points, min_step)) for n in wanted}
    # The points come from typed columns (int steps, float-or-null values): constructing
    # without validation skips a per-point check that can only pass.
    series = {}
    for name in wanted:
        steps, values, total = read[name]
        series[name] = Series.model_construct(steps=steps, values=values, total_points=total)
    return MetricsOut.model_construct(job_id=job_id, names=available, series=series)


def metrics_json(
    session: Session,
    cache: ResponseCache,
    job: Job,
    names: list[str] | None,
    max_points: int,
    min_step: int | None = None,
    kept: SeriesCache | None = None,
) -> Encoded:
    """The encoded MetricsOut, from the cache while the job's metrics are unchanged. The job
    was read (and its owner checked) by the caller, so the key needs no owner: a job's body is
    the same for everyone allowed to see it, and nobody else reaches this."""
    key = ("metrics", job.id, tuple(names) if names is not None else None, max_points, min_step)

    def build() -> bytes:
        out = metrics_out(session, job, names, max_points, min_step, kept)
        return out.model_dump_json().encode()

    return cache.get(key, job.metrics_version, build)
