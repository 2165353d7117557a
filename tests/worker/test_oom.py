"""The kernel's out-of-memory kill counters: the memory cgroup's (either layout), else the
machine's (/proc/vmstat)."""

from __future__ import annotations

from pathlib import Path

from worker.oom import OomCounts, machine_oom_kills, oom_kills


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


def test_the_machine_counter_is_read_from_vmstat(tmp_path: Path):
    vmstat = tmp_path / "vmstat"
    vmstat.write_text("nr_free_pages 1000\noom_kill 3\nnr_zone_active_anon 5\n")
    assert machine_oom_kills(vmstat) == 3
    vmstat.write_text("nr_free_pages 1000\n")  # a kernel before 4.13
    assert machine_oom_kills(vmstat) is None
    assert machine_oom_kills(tmp_path / "missing") is None


def test_a_kill_is_told_by_the_cgroup_where_readable_else_by_the_machine():
    # The cgroup's counter, when readable, alone answers: the machine's may count others.
    assert "memory cgroup counted" in OomCounts(2, 7).killed_since(OomCounts(1, 7))
    assert OomCounts(1, 8).killed_since(OomCounts(1, 7)) == ""
    # No cgroup counter (a container without the memory controller): the machine's says.
    assert "machine's count" in OomCounts(None, 8).killed_since(OomCounts(None, 7))
    assert OomCounts(None, 7).killed_since(OomCounts(None, 7)) == ""
    assert OomCounts(None, None).killed_since(OomCounts(None, None)) == ""
