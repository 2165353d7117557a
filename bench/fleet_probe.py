"""What bench/fleet.py reads while a fleet runs: PostgreSQL's statistics views (transactions,
tuples, connections, running jobs), the servers' processes' CPU time, Redis' command count."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import psutil
import redis
from sqlalchemy import text

from tests.service import Service

MONITOR = "gro-fleet-monitor"  # the probe's own connection, left out of the counts


def cpu_s(process: psutil.Process) -> float:
    """CPU seconds of a process and everything below it (PostgreSQL: one per connection)."""
    total = 0.0
    for p in [process, *process.children(recursive=True)]:
        try:
            times = p.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def machine_busy_s() -> float:
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


_DB_COUNTERS = text(
    """
    SELECT d.xact_commit + d.xact_rollback, d.tup_inserted, d.tup_updated, d.tup_fetched,
           (SELECT n_tup_ins FROM pg_stat_user_tables WHERE relname = 'metrics'),
           (SELECT n_tup_ins FROM pg_stat_user_tables WHERE relname = 'samples'),
           (SELECT count(*) FROM jobs WHERE status <> 'queued')
    FROM pg_stat_database AS d WHERE d.datname = current_database()
    """
)
_CONNECTIONS = text(
    """
    SELECT count(*), count(*) FILTER (WHERE state = 'active'),
           count(*) FILTER (WHERE wait_event_type = 'Lock'),
           (SELECT count(*) FROM jobs WHERE status = 'running')
    FROM pg_stat_activity
    WHERE backend_type = 'client backend' AND application_name <> :me
    """
)
CPU_COLUMNS = ("postgres", "api", "redis", "bench", "others")
COUNTERS = ("xact", "tup_ins", "tup_upd", "tup_fetch", "metric_ins", "sample_ins", "taken")


@dataclass
class Snapshot:
    at: float
    db: dict[str, int]
    cpu: dict[str, float]
    redis_commands: int


@dataclass
class Probe:
    """Where the numbers come from: the database's statistics views, the servers' processes."""

    service: Service
    postgres: psutil.Process
    engine: Any
    hosts: list[psutil.Process] = field(default_factory=list)

    def snapshot(self) -> Snapshot:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT pg_stat_clear_snapshot()"))
            row = connection.execute(_DB_COUNTERS).one()
        cpu = {
            "postgres": cpu_s(self.postgres),
            "redis": cpu_s(psutil.Process(self.service.redis.process.pid)),
            "api": cpu_s(psutil.Process(self.service.api_process.pid)),
            # The simulated workers' processes and this one (the pollers, this probe).
            "bench": sum(cpu_s(h) for h in self.hosts) + cpu_s(psutil.Process()),
            "machine": machine_busy_s(),
        }
        client = redis.Redis.from_url(self.service.redis.url)
        commands = int(client.info("stats")["total_commands_processed"])
        return Snapshot(time.monotonic(), dict(zip(COUNTERS, row, strict=True)), cpu, commands)

    def connections(self) -> tuple[int, int, int, int]:
        """(connections, active, waiting on a lock, running jobs) now."""
        with self.engine.connect() as connection:
            return tuple(connection.execute(_CONNECTIONS, {"me": MONITOR}).one())


class Sampler(threading.Thread):
    """Connections every half second, and when the N-th job began to run (the claim burst)."""

    def __init__(self, probe: Probe, n: int) -> None:
        super().__init__(daemon=True)
        self.probe, self.n = probe, n
        self.started = time.monotonic()
        self.samples: list[tuple[int, int, int, int]] = []
        self.burst_s: float | None = None
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            sample = self.probe.connections()
            self.samples.append(sample)
            if self.burst_s is None and sample[3] >= self.n:
                self.burst_s = time.monotonic() - self.started
