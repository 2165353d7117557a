"""bench/load.py end to end at a tiny size (real API, Redis, two workers training, SQLite),
and the timer its pollers keep. Checks that the benchmark runs and reports, not how fast."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.load import next_slot

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "load.py"


def test_a_poller_keeps_its_phase_after_a_slow_round() -> None:
    assert next_slot(1.0, 0.2, now=1.05) == pytest.approx(1.2)  # on time: the next tick
    # A round that ran until 1.55 outlasted the ticks at 1.2 and 1.4: the next is 1.6, not
    # 1.55 + 0.2 (which would move this poller's phase onto that of every poller that
    # waited on the same slow answer).
    assert next_slot(1.0, 0.2, now=1.55) == pytest.approx(1.6)
    assert next_slot(1.0, 0.2, now=1.2) == pytest.approx(1.2)
    assert next_slot(1.0, 0.0, now=1.55) == 1.55  # interval 0: back to back


@pytest.mark.slow
def test_a_tiny_load_run_reports_every_row_without_errors(tmp_path: Path) -> None:
    argv = [sys.executable, str(SCRIPT), "--db", "sqlite", "--pollers", "3", "--streams", "2"]
    argv += ["--seconds", "3", "--train-seconds", "1", "--etag"]
    env = os.environ | {"TMPDIR": str(tmp_path)}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    rows = {
        cells[1]: cells
        for line in proc.stdout.splitlines()
        if line.startswith("| sqlite")
        for cells in [[c.strip() for c in line.strip("|").split("|")]]
    }
    for name in ("metrics", "job list"):
        assert int(rows[name][-1]) >= 3 * 2  # every poller's rounds over 3 s at 1 s apart
        assert rows[name][4].endswith("x")
    assert rows["first round (cold, not timed)"][-1] == "6"  # 3 pollers x 2 endpoints
    assert rows["training steps/s"][-1] == "errors: 0"
    assert "events" in rows["2 streams"][3]
