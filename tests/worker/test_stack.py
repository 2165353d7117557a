"""The whole stack as real processes: uvicorn serving the API, Celery workers, redis-server and
PostgreSQL on 127.0.0.1. Jobs go in through HTTP and come out of the database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server.db.models import JobEvent, Metric
from tests.processes import Postgres, free_port, wait_until
from tests.server.conftest import PAIRS, admin_sql, jsonl
from tests.stack import QUICK_RECOVERY, ROOT, Service, start_service
from tests.worker.conftest import tiny_dpo

pytestmark = pytest.mark.slow


@pytest.fixture
def services(postgres: Postgres, tmp_path: Path) -> Iterator[Service]:
    """A fresh PostgreSQL database, redis-server, the API; workers are started by the test."""
    name = f"stack_{os.getpid()}_{int(time.time() * 1000) % 10**8}"
    admin_sql(postgres, f"CREATE DATABASE {name}")
    service = start_service(postgres.url(name), tmp_path, QUICK_RECOVERY)
    yield service
    service.close()
    admin_sql(postgres, f"DROP DATABASE {name} WITH (FORCE)")


def dataset(services: Service) -> str:
    return services.upload(jsonl(PAIRS))


def steps_of(services: Service, job_id: str) -> list[int]:
    return sorted(m.step for m in services.rows(Metric, job_id) if m.name == "loss/policy")


def test_upload_submit_train_succeed(services: Service):
    services.start_worker()
    job_id = services.submit(tiny_dpo(dataset(services)))
    services.wait(lambda: services.job(job_id)["status"] == "succeeded", 180, "success")
    assert steps_of(services, job_id) == list(range(1, 9))
    samples = services.api.get(f"/v1/jobs/{job_id}/samples").json()
    assert samples["data"] and samples["steps"][-1] == 8
    checkpoints = services.api.get(f"/v1/jobs/{job_id}/checkpoints").json()["data"]
    assert [c["step"] for c in checkpoints] == [6, 8]
    download = httpx.get(checkpoints[-1]["download_url"])  # the signed link, no key
    assert download.status_code == 200 and len(download.content) > 100_000


def test_cancel_a_running_job(services: Service):
    services.start_worker()
    job_id = services.submit(tiny_dpo(dataset(services), steps=5000))
    services.wait(lambda: services.job(job_id)["progress"]["step"] >= 3, 180, "progress")
    services.api.post(f"/v1/jobs/{job_id}/cancel")
    requested = time.monotonic()
    services.wait(lambda: services.job(job_id)["status"] == "cancelled", 60, "cancelled")
    seconds = time.monotonic() - requested
    job = services.job(job_id)
    assert job["progress"]["step"] < 5000
    checkpoints = services.api.get(f"/v1/jobs/{job_id}/checkpoints").json()["data"]
    assert checkpoints[-1]["step"] == job["progress"]["step"]  # kept where it stopped
    assert seconds < 30, f"took {seconds:.1f}s to stop"


def test_kill_9_the_worker_then_a_new_one_resumes(services: Service):
    first = services.start_worker()
    job_id = services.submit(tiny_dpo(dataset(services), steps=40, batch_size=2))
    services.wait(
        lambda: (
            bool(services.api.get(f"/v1/jobs/{job_id}/checkpoints").json()["data"])
            and services.job(job_id)["progress"]["step"] >= 5
        ),
        180,
        "a checkpoint",
    )
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    killed_at = services.job(job_id)["progress"]["step"]
    services.start_worker()
    services.wait(lambda: services.job(job_id)["status"] == "succeeded", 240, "recovery")
    job = services.job(job_id)
    assert job["attempts"] == 2 and killed_at < 40
    assert steps_of(services, job_id) == list(range(1, 41))  # continuous, no duplicates
    kinds = [e.kind for e in services.rows(JobEvent, job_id)]
    assert "requeued" in kinds and "resumed" in kinds


def test_restarting_redis_keeps_a_queued_job(services: Service):
    job_id = services.submit(tiny_dpo(dataset(services)))  # no worker yet: it waits in Redis
    services.redis = services.redis.restart()
    services.start_worker()
    services.wait(lambda: services.job(job_id)["status"] == "succeeded", 180, "success")
    assert services.job(job_id)["attempts"] == 1


def test_two_workers_run_each_job_exactly_once(services: Service):
    pairs = dataset(services)
    ids = [services.submit(tiny_dpo(pairs, steps=3)) for _ in range(6)]
    services.start_worker()
    services.start_worker()
    services.wait(lambda: all(services.job(j)["status"] == "succeeded" for j in ids), 300, "all")
    claims = {j: [e for e in services.rows(JobEvent, j) if e.kind == "claimed"] for j in ids}
    assert all(len(c) == 1 for c in claims.values()), claims
    assert all(services.job(j)["attempts"] == 1 for j in ids)
    workers = {c[0].message.split(" on ")[1].split(",")[0] for c in claims.values()}
    assert len(workers) == 2  # both took part


def run_up(tmp_path: Path, *flags: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gro_core.cli",
            "up",
            "--data-dir",
            str(tmp_path / "gro"),
            "--port",
            str(port),
            "--dashboard-port",
            str(free_port()),
            *flags,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return process, port


def test_gro_up_starts_answers_and_stops_on_sigint(tmp_path: Path):
    process, port = run_up(tmp_path, "--no-demo")
    try:
        wait_until(lambda: _ready(port), 120, "gro up")
        children = _children(process.pid)
        assert len(children) >= 3  # redis, api, worker (and the dashboard once it exists)
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "admin key" in output and "stopped" in output
    assert not [pid for pid in children if _alive(pid)]
    # a second start reuses the data: same key, no new one
    again, port = run_up(tmp_path, "--no-demo")
    try:
        wait_until(lambda: _ready(port), 120, "gro up again")
    finally:
        again.send_signal(signal.SIGINT)
        second, _ = again.communicate(timeout=60)
    key = (tmp_path / "gro" / "admin-key").read_text().strip()
    assert key in output and key in second


def test_gro_up_demo_gets_a_job_running(tmp_path: Path):
    process, port = run_up(tmp_path, "--no-dashboard")
    try:
        wait_until(lambda: _ready(port), 120, "gro up")
        key = (tmp_path / "gro" / "admin-key").read_text().strip()
        api = httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}
        )

        def running() -> bool:
            jobs = api.get("/v1/jobs", params={"limit": 100}).json()["data"]
            return any(j["status"] in ("running", "succeeded") for j in jobs)

        wait_until(running, 180, "a demo job running")
        jobs = api.get("/v1/jobs", params={"limit": 100}).json()["data"]
        assert len(jobs) == 1 + 4 * 2  # the warm-up and 4 variants x 2 seeds
        marker = json.loads((tmp_path / "gro" / "demo-started").read_text())
        assert marker["warmup"] in [j["id"] for j in jobs]
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _children(pid: int) -> list[int]:
    import psutil

    return [c.pid for c in psutil.Process(pid).children(recursive=True)]


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
