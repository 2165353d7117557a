"""The kernel's out-of-memory kill counter, read from either cgroup layout."""

from __future__ import annotations

from pathlib import Path

from worker.oom import oom_kills


def test_the_oom_kill_counter_is_read_from_cgroup_v2_and_v1(tmp_path: Path):
    proc = tmp_path / "cgroup"
    proc.write_text("0::/jobs/w1\n")
    (tmp_path / "jobs/w1").mkdir(parents=True)
    (tmp_path / "jobs/w1/memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n")
    assert oom_kills(tmp_path, proc) == 2
    proc.write_text("9:name=systemd:/\n4:memory:/api/x\n0::/\n")
    (tmp_path / "memory/api/x").mkdir(parents=True)
    (tmp_path / "memory/api/x/memory.oom_control").write_text("under_oom 0\noom_kill 5\n")
    assert oom_kills(tmp_path, proc) == 5


def test_no_readable_counter_is_none(tmp_path: Path):
    assert oom_kills(tmp_path, tmp_path / "missing") is None
    (tmp_path / "cgroup").write_text("0::/nowhere\n")
    assert oom_kills(tmp_path, tmp_path / "cgroup") is None
