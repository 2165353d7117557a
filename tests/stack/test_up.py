"""`gro up` as a user runs it: a real process that starts Redis, the API, a worker (and the
dashboard), answers, submits its demo, and stops everything on Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest

from tests.processes import free_port, wait_until
from tests.service import ROOT

pytestmark = pytest.mark.slow


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
    return [c.pid for c in psutil.Process(pid).children(recursive=True)]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _kill_all(process: subprocess.Popen, pids: list[int]) -> None:
    """Clean-up of a test that failed: nothing it started survives it."""
    for pid in [process.pid, *pids]:
        try:
            psutil.Process(pid).kill()
        except psutil.Error:
            continue
    process.wait(30)


def _left(pids: list[int]) -> list[int]:
    return [pid for pid in pids if _alive(pid)]


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM])
def test_gro_up_stopped_by_a_signal_leaves_no_process(tmp_path: Path, signum: int):
    process, port = run_up(tmp_path, "--no-demo", "--no-dashboard")
    children: list[int] = []
    try:
        wait_until(lambda: _ready(port), 120, "gro up")
        children = _children(process.pid)
        [api] = [p for p in map(psutil.Process, children) if "uvicorn" in p.cmdline()]
        used = api.environ().get("GRO_SECRET_KEY", "change-me")
        process.send_signal(signum)
        output, _ = process.communicate(timeout=60)
        assert output.rstrip().endswith("\nstopped"), output  # it ran its clean-up
        wait_until(lambda: not _left(children), 20, "every child to exit")
    finally:
        _kill_all(process, children)
    assert not (tmp_path / "gro" / "up.pid").exists()
    # the API signed links with this folder's random secret, kept private, not the default
    secret = tmp_path / "gro" / "secret-key"
    assert used == secret.read_text().strip() and used != "change-me"
    assert secret.stat().st_mode & 0o777 == 0o600


def test_gro_up_killed_outright_takes_its_children_and_the_next_start_says_so(tmp_path: Path):
    process, port = run_up(tmp_path, "--no-demo", "--no-dashboard")
    children: list[int] = []
    try:
        wait_until(lambda: _ready(port), 120, "gro up")
        children = _children(process.pid)
        process.kill()  # no handler runs: the kernel ends the children (PR_SET_PDEATHSIG)
        process.wait(30)
        wait_until(lambda: not _left(children), 20, "every child to exit")
    finally:
        _kill_all(process, children)
    again, port = run_up(tmp_path, "--no-demo", "--no-dashboard")
    try:
        wait_until(lambda: _ready(port), 120, "gro up again")
    finally:
        again.send_signal(signal.SIGINT)
        output, _ = again.communicate(timeout=60)
    assert "did not stop cleanly" in output and again.returncode == 0, output


def test_a_second_gro_up_is_refused_and_a_closed_stdout_does_not_stop_the_clean_up(
    tmp_path: Path,
):
    first, port = run_up(tmp_path, "--no-demo", "--no-dashboard")
    children: list[int] = []
    second: subprocess.Popen | None = None
    try:
        wait_until(lambda: _ready(port), 120, "gro up")
        children = _children(first.pid)
        second, _ = run_up(tmp_path, "--no-demo", "--no-dashboard")  # same folder, other ports
        output, _ = second.communicate(timeout=90)
        assert second.returncode == 1 and "already running" in output, output
        assert f"kill {first.pid}" in output
        assert first.stdout is not None
        first.stdout.close()  # `gro up | tee log` and Ctrl-C: the reader is gone first
        first.send_signal(signal.SIGINT)
        first.wait(60)
        wait_until(lambda: not _left(children), 20, "every child to exit")
    finally:
        if second is not None and second.poll() is None:
            _kill_all(second, _children(second.pid))
        _kill_all(first, children)
