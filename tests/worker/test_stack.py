"""The whole stack as real processes: uvicorn serving the API, Celery workers, redis-server and
PostgreSQL on 127.0.0.1. Jobs go in through HTTP and come out of the database."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from gro_core.models.builtin import resolve_model
from server.db.models import JobEvent, JobNode, Metric
from tests.processes import Postgres
from tests.server.conftest import PAIRS, admin_sql, jsonl
from tests.service import QUICK_RECOVERY, Service, start_service
from tests.worker.conftest import tiny_dpo
from tests.worker.hostile import hostile

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


@pytest.fixture
def open_services(postgres: Postgres, tmp_path: Path) -> Iterator[Service]:
    """As `services`, with python rewards allowed and a 1 s cancel grace; the rewards of
    tests.worker.hostile leave a file in tmp_path/marks when they start."""
    name = f"open_{os.getpid()}_{int(time.time() * 1000) % 10**8}"
    admin_sql(postgres, f"CREATE DATABASE {name}")
    (tmp_path / "marks").mkdir()
    env = {
        **QUICK_RECOVERY,
        "GRO_ALLOW_PYTHON_REWARDS": "1",
        "GRO_CANCEL_GRACE_S": "1",
        "GRO_TEST_MARKS": str(tmp_path / "marks"),
    }
    service = start_service(postgres.url(name), tmp_path, env)
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
    wait_for_a_checkpoint(services, job_id, 180)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    resumes_after_the_kill(services, job_id, steps=40, seconds=240)


def wait_for_a_checkpoint(services: Service, job_id: str, seconds: float) -> None:
    """Until the job has kept a checkpoint and trained 5 steps: a kill then has one to resume."""
    services.wait(
        lambda: (
            bool(services.api.get(f"/v1/jobs/{job_id}/checkpoints").json()["data"])
            and services.job(job_id)["progress"]["step"] >= 5
        ),
        seconds,
        "a checkpoint",
    )


def resumes_after_the_kill(services: Service, job_id: str, steps: int, seconds: float) -> None:
    """A new worker takes the killed job up again, and it ends as one never stopped."""
    killed_at = services.job(job_id)["progress"]["step"]
    services.start_worker()
    services.wait(lambda: services.job(job_id)["status"] == "succeeded", seconds, "recovery")
    job = services.job(job_id)
    assert job["attempts"] == 2 and killed_at < steps
    assert steps_of(services, job_id) == list(range(1, steps + 1))  # continuous, no duplicates
    kinds = [e.kind for e in services.rows(JobEvent, job_id)]
    assert "requeued" in kinds and "resumed" in kinds


def session_of(leader: int) -> list[psutil.Process]:
    """The processes of the session `leader` started (a worker: its fork server, the job's
    child, the ranks and their helpers), the leader itself once it is gone excluded."""
    found = []
    for p in psutil.process_iter():
        try:
            if os.getsid(p.pid) == leader and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
        except (OSError, psutil.Error):  # exited while listed
            continue
    return found


def test_kill_9_the_worker_of_a_two_process_job_ends_its_ranks_and_a_new_one_resumes(
    postgres: Postgres, tmp_path: Path
):
    name = f"ranks_{os.getpid()}_{int(time.time() * 1000) % 10**8}"
    admin_sql(postgres, f"CREATE DATABASE {name}")
    env = {**QUICK_RECOVERY, "GRO_WORKER_PROCS": "2", "GRO_TORCH_THREADS": "1"}
    services = start_service(postgres.url(name), tmp_path, env)
    try:
        _kill_9_a_two_process_job_then_resume(services)
    finally:
        services.close()
        admin_sql(postgres, f"DROP DATABASE {name} WITH (FORCE)")


def _kill_9_a_two_process_job_then_resume(services: Service) -> None:
    resolve_model("builtin:tiny-llama")  # built once here, not by two ranks racing
    first = services.start_worker()
    spec = tiny_dpo(dataset(services), steps=30, batch_size=2)
    spec["resources"] = {"nproc_per_node": 2, "strategy": "fsdp"}  # checkpoints sharded
    job_id = services.submit(spec)
    wait_for_a_checkpoint(services, job_id, 240)
    ranks = [p for p in session_of(first.pid) if "spawn_main" in " ".join(p.cmdline())]
    assert len(ranks) >= 2, ranks  # the ranks and the spawn helpers
    os.kill(first.pid, signal.SIGKILL)  # the worker alone: what its job started must follow
    first.wait()
    services.wait(lambda: session_of(first.pid) == [], 30, "every process of the job to end")
    resumes_after_the_kill(services, job_id, steps=30, seconds=300)


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


def test_jobs_holding_the_gil_on_two_workers_keep_beating_and_cancel_in_seconds(
    open_services: Service, tmp_path: Path
):
    # Before jobs ran in child processes, such a job starved its worker's heartbeat thread,
    # was re-queued to the next worker, hung that one too, and never saw its cancel.
    services = open_services
    services.start_worker()
    services.start_worker()
    ids = [services.submit(hostile("holds_the_gil")) for _ in range(2)]
    marks = tmp_path / "marks"
    services.wait(lambda: len(list(marks.glob("gil-*"))) == 2, 240, "both rewards running")
    time.sleep(8)  # past the 6 s heartbeat timeout: the workers must keep beating
    for job_id in ids:
        services.api.post(f"/v1/jobs/{job_id}/cancel")
    requested = time.monotonic()
    services.wait(
        lambda: all(services.job(j)["status"] == "cancelled" for j in ids), 60, "cancelled"
    )
    seconds = time.monotonic() - requested
    print(f"two GIL-holding jobs on two Celery workers cancelled in {seconds:.1f}s")
    assert seconds < 10, f"took {seconds:.1f}s to stop"
    for job_id in ids:
        kinds = [e.kind for e in services.rows(JobEvent, job_id)]
        assert "requeued" not in kinds and kinds.count("claimed") == 1, kinds
    # neither worker is left hung: both go on taking jobs
    pairs = dataset(services)
    after = [services.submit(tiny_dpo(pairs, steps=2)) for _ in range(2)]
    services.wait(lambda: all(services.job(j)["status"] == "succeeded" for j in after), 240, "next")


def test_a_job_across_two_machines_runs_on_two_workers_and_outlives_losing_one(
    postgres: Postgres, tmp_path: Path
):
    """Two workers on one machine act as two nodes on loopback: the first to claim the job
    hosts the rendezvous, the other joins it through the database (job_nodes). A kill -9 of
    the joined worker re-queues the job (its ranks there die; the host's lose their peer), and
    it resumes across the host and a new worker."""
    name = f"nodes_{os.getpid()}_{int(time.time() * 1000) % 10**8}"
    admin_sql(postgres, f"CREATE DATABASE {name}")
    env = {**QUICK_RECOVERY, "GRO_NODE_ADDRESS": "127.0.0.1", "GRO_TORCH_THREADS": "1"}
    services = start_service(postgres.url(name), tmp_path, env)
    try:
        services.start_worker()
        services.start_worker()
        spec = tiny_dpo(dataset(services), steps=24, batch_size=2)
        spec["resources"] = {"nproc_per_node": 1, "nnodes": 2, "strategy": "ddp"}
        job_id = services.submit(spec)
        wait_for_a_checkpoint(services, job_id, 300)
        nodes = services.rows(JobNode, job_id)
        assert sorted(n.node for n in nodes) == [0, 1]
        assert len({n.worker for n in nodes}) == 2  # two workers, one node each
        joined = next(n.worker for n in nodes if n.node == 1)  # host:pid of its task process
        leader = os.getsid(int(joined.rsplit(":", 1)[1]))  # the worker's session
        os.killpg(leader, signal.SIGKILL)
        next(w for w in services.workers if w.pid == leader).wait()
        resumes_after_the_kill(services, job_id, steps=24, seconds=300)
        second = [n for n in services.rows(JobNode, job_id) if n.attempt == 2]
        assert sorted(n.node for n in second) == [0, 1]
        assert joined not in {n.worker for n in second}
    finally:
        services.close()
        admin_sql(postgres, f"DROP DATABASE {name} WITH (FORCE)")
