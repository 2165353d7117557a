"""CPU per metrics poll, in process (FastAPI's TestClient over SQLite), before and after the
cache of encoded answers (issue 15: 50 dashboards polling every second asked one uvicorn
process for more than a core).

    .venv/bin/python bench/metrics_poll.py [--series 20] [--points 1000] [--rounds 30]

Variants, run interleaved (one of each per round), median CPU ms per request (client included,
the same for all):
  - before: the handler as it was (pydantic Series validated per point, then FastAPI's
    response_model validation and json.dumps), mounted beside the real route;
  - miss: the route now, its cache emptied first (SQL, then pydantic's serializer);
  - hit: the route now, nothing new since the last poll (one primary-key read);
  - 304: the same poll sending its ETag back;
  - flush+50: a worker writes one point, then 50 dashboards poll (per poll; the first misses).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Query
from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from server.api.deps import JobDep, SessionDep  # noqa: E402
from server.config import Settings  # noqa: E402
from server.db import outputs  # noqa: E402
from server.db.migrate import upgrade  # noqa: E402
from server.db.owners import create_key  # noqa: E402
from server.db.series import read_series  # noqa: E402
from server.db.session import session_scope  # noqa: E402
from server.main import create_app  # noqa: E402
from server.queue import RecordingQueue  # noqa: E402
from server.schemas.jobs import MetricsOut, Series  # noqa: E402
from tests.server.conftest import PAIRS, Api, dpo_spec  # noqa: E402


def mount_before(app: FastAPI) -> None:
    """The metrics handler as it was before the cache, at /before/{job_id}/metrics."""

    @app.get("/before/{job_id}/metrics", response_model=MetricsOut)
    def before(
        job: JobDep, session: SessionDep, max_points: Annotated[int, Query()] = 1000
    ) -> MetricsOut:
        available = outputs.metric_names(session, job.id)
        series = {}
        for name in available:
            points, total = read_series(session, job.id, name, max_points)
            series[name] = Series(
                steps=[s for s, _ in points], values=[v for _, v in points], total_points=total
            )
        return MetricsOut(job_id=job.id, names=available, series=series)


def setup(series: int, points: int) -> tuple[FastAPI, Api, str]:
    tmp = Path(tempfile.mkdtemp())
    url = f"sqlite:///{tmp / 'gro.db'}"
    upgrade(url)
    settings = Settings(
        environment="test",
        secret_key="bench-secret-0123456789",
        database_url=url,
        storage_dir=tmp / "storage",
    )
    with session_scope(url) as session:
        key = create_key(session, "bench")
    app = create_app(settings, RecordingQueue())
    mount_before(app)
    api = Api(TestClient(app), key)
    job_id = api.job(dpo_spec(api.dataset(PAIRS)))["id"]
    rows = [(s, f"m{i:02d}", 1.0 / (s + 1) + i) for i in range(series) for s in range(points)]
    with session_scope(url) as session:
        outputs.write_metrics(session, job_id, rows)
    return app, api, job_id


def variants(app: FastAPI, api: Api, job_id: str) -> dict[str, Callable[[], object]]:
    """Each variant's request; a variant returning a count made that many requests."""
    path = f"/v1/jobs/{job_id}/metrics"
    before = api.get(f"/before/{job_id}/metrics").json()
    assert api.get(path).json() == before, "the answers differ"
    etag = [api.get(path).headers["ETag"]]

    def miss() -> object:
        app.state.metrics_cache.clear()
        return api.get(path).raise_for_status()

    def not_modified() -> object:
        response = api.get(path, headers={"If-None-Match": etag[0]})
        assert response.status_code == 304
        return response

    url, step = app.state.settings.database_url, [10**6]

    def after_flush() -> int:
        start = time.process_time()
        step[0] += 1
        with session_scope(url) as session:
            outputs.write_metrics(session, job_id, [(step[0], "m00", 0.5)])
        paused[0] += time.process_time() - start  # the write is the worker's, not timed
        for _ in range(50):
            response = api.get(path).raise_for_status()
        etag[0] = response.headers["ETag"]
        return 50

    return {
        "before": lambda: api.get(f"/before/{job_id}/metrics").raise_for_status(),
        "miss": miss,
        "hit": lambda: api.get(path).raise_for_status(),
        "304": not_modified,
        "flush+50": after_flush,
    }


paused = [0.0]  # CPU spent inside a variant that is not its requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=20)
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    app, api, job_id = setup(args.series, args.points)
    runs = variants(app, api, job_id)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.rounds + 2):  # two warm-up rounds
        for name, run in runs.items():
            paused[0], start = 0.0, time.process_time()
            count = run()
            spent = time.process_time() - start - paused[0]
            times[name].append(spent / (count if isinstance(count, int) else 1))
    base = statistics.median(times["before"][2:])
    print(f"{args.series} series x {args.points} points, {args.rounds} rounds\n")
    print("| variant | CPU ms per request (median) | vs before |\n|---|---|---|")
    for name, values in times.items():
        ms = statistics.median(values[2:])
        print(f"| {name} | {ms * 1000:.2f} | {ms / base:.3f}x |")


if __name__ == "__main__":
    main()
