"""Metric series for the API: every requested name, each downsampled on its own."""

from __future__ import annotations

import math

from sqlalchemy.orm import Session

from server.db.outputs import downsample, metric_names, read_series
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
    for name, (steps, values) in read_series(session, job_id, wanted, min_step).items():
        kept_steps, kept_values = downsample(steps, values, max_points)
        series[name] = Series(
            steps=kept_steps.tolist(),
            values=[None if math.isnan(v) else v for v in kept_values.tolist()],
            total_points=len(steps),
        )
    return MetricsOut(job_id=job_id, names=available, series=series)
