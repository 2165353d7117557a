"""A running service for tests and benchmarks: the API (uvicorn), Celery workers, Redis and a
database, as real processes on 127.0.0.1, plus a client that speaks to them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from server.db.migrate import upgrade
from server.db.owners import create_key
from server.db.session import dispose_engine, new_session, session_scope
from tests.processes import Redis, free_port, port_open, start_redis, stop, wait_until

ROOT = Path(__file__).resolve().parents[1]
# Fast recovery, so tests of it take seconds: beat every 0.5 s, dead after 6 s.
QUICK_RECOVERY = {
    "GRO_HEARTBEAT_S": "0.5",
    "GRO_HEARTBEAT_TIMEOUT_S": "6",
    "GRO_REQUEUE_AFTER_S": "3",
    "GRO_RECONCILE_EVERY_S": "1",
}


@dataclass
class Service:
    url: str
    redis: Redis
    root: Path
    env: dict[str, str]
    api: httpx.Client
    api_process: subprocess.Popen
    workers: list[subprocess.Popen] = field(default_factory=list)

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def start_worker(self) -> subprocess.Popen:
        n = len(self.workers)
        log = (self.logs / f"worker-{n}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "worker", "--name", f"w{n}", "--loglevel", "WARNING"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.workers.append(process)
        return process

    def submit(self, spec: dict[str, Any]) -> str:
        response = self.api.post("/v1/jobs", json=spec)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def upload(self, body: bytes, name: str = "data.jsonl") -> str:
        response = self.api.post("/v1/datasets", files={"file": (name, body)})
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def job(self, job_id: str) -> dict[str, Any]:
        return self.api.get(f"/v1/jobs/{job_id}").json()

    def wait(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            for process in self.workers:
                assert process.poll() is None or process.returncode in (-9, 0), self.worker_logs()
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}\n{self.worker_logs()}")

    def worker_logs(self) -> str:
        return "\n".join(p.read_text()[-3000:] for p in sorted(self.logs.glob("worker-*.log")))

    def rows(self, model: Any, job_id: str) -> list[Any]:
        with new_session(self.url) as session:
            return list(session.scalars(select(model).where(model.job_id == job_id)))

    def close(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        stop(self.api_process)
        self.redis.stop()
        self.api.close()
        dispose_engine(self.url)


def start_service(
    url: str, root: Path, extra_env: dict[str, str] | None = None, api_processes: int = 1
) -> Service:
    """Migrate `url`, start Redis and the API (`api_processes` uvicorn workers); workers are
    started by the caller."""
    upgrade(url)
    with session_scope(url) as session:
        key = create_key(session, "tester", admin=True)
    redis = start_redis(root / "redis")
    env = {
        **os.environ,
        "GRO_DATABASE_URL": url,
        "GRO_BROKER_URL": redis.url,
        "GRO_STORAGE_DIR": str(root / "storage"),
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    (root / "logs").mkdir(parents=True, exist_ok=True)
    port = free_port()
    api_process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "server.main:app",
            "--port",
            str(port),
            "--workers",
            str(api_processes),
            "--no-access-log",
        ],
        cwd=ROOT,
        env=env,
        stdout=(root / "logs" / "api.log").open("ab"),
        stderr=subprocess.STDOUT,
    )
    wait_until(lambda: port_open(port), 60, "the API")
    api = httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    return Service(url, redis, root, env, api, api_process)
