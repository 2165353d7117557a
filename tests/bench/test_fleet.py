"""bench/fleet.py end to end at a tiny size: real PostgreSQL, Redis and API, two simulated
workers for a few seconds. Checks the simulation does what a worker does (claims jobs, writes
metrics and samples, beats, and the report sees it), not how fast."""

from __future__ import annotations

import pytest

from bench.fleet import bottleneck, measure, parser, table
from tests.processes import missing, postgres_bin, redis_binary


@pytest.mark.slow
def test_a_tiny_fleet_claims_jobs_and_its_points_reach_the_database() -> None:
    if postgres_bin() is None:
        missing("PostgreSQL")
    if redis_binary() is None:
        missing("Redis")
    args = parser().parse_args(
        ["--sizes", "2", "--seconds", "6", "--job-steps", "3", "--pollers", "1"]
    )
    [row] = measure(args)
    assert row["workers"] == 2
    assert row["claimed_per_s"] > 0
    assert row["burst_s"] is not None  # both workers ran a job at once
    assert row["points_per_s"] > 0 and row["points_offered_per_s"] > 0
    assert row["points_per_s"] <= 1.5 * row["points_offered_per_s"]  # no point counted twice
    assert row["samples_per_s"] > 0
    assert row["steps_per_s"] > 0
    assert row["xact_per_s"] > 0 and row["tup_ins_per_s"] > 0
    assert row["connections_peak"] >= 2  # at least one per simulated worker
    assert row["api_requests"] > 0 and row["api_errors"] == 0
    assert min(row["api_p99_ms"].values()) > 0
    assert row["cpu_cores"]["postgres"] > 0
    assert row["jobs_ended"].get("succeeded", 0) > 0  # 3-step jobs finish within 6 s
    assert "| 2 |" in table([row])
    assert bottleneck([row], 2)
