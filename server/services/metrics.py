"""Metric series for the API: every requested name, each downsampled on its own."""

from __future__ import annotations

from sqlalchemy.orm import Session

from server.db.outputs import metric_names
from server.db.series import read_series
from server.schemas.jobs import MetricsOut, Series


def metrics_out(
    session: Session,
    job_id: str,
    names: list[str] | None,
    max_points: int,
    min_step: int | None = None,
) -> MetricsOut:
    available = metric_names(session, job_id)
    wanted = [n for n in names if n in available] if names is not None else available
    series = {}
    for name in wanted:
        points, total = read_series(session, job_id, name, max_points, min_step)
        series[name] = Series(
            steps=[step for step, _ in points],
            values=[value for _, value in points],
            total_points=total,
        )
    return MetricsOut(job_id=job_id, names=available, series=series)
