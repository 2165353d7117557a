"""bench/distributed.py still runs against the current trainer and FSDP2 still shards.

The benchmark times gro's Trainer from the outside (it wraps optimizer.step to count state);
a change to the loop or to gro_core.trainers.strategy can break it without any other test
noticing. Here it runs end to end at its tiniest size: two torchrun runs of 2 gloo processes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "distributed.py"

pytestmark = pytest.mark.slow


def test_table_has_both_strategies_and_fsdp_holds_less(tmp_path: Path) -> None:
    root = str(SCRIPT.parents[1])  # the script's own folder is bench/: gro_core is one up
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    env = os.environ | {"GRO_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": path}
    argv = [sys.executable, str(SCRIPT), "--size", "tiny", "--steps", "2", "--wait", "0"]
    proc = subprocess.run(
        [*argv, "--out", str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    rows = {
        cells[0]: cells
        for line in proc.stdout.splitlines()
        if line.startswith("| ")
        for cells in [[c.strip() for c in line.strip("|").split("|")]]
    }
    assert {"ddp", "fsdp", "fsdp/ddp"} <= set(rows), proc.stdout
    state = rows["strategy"].index("state MB/rank")
    ddp, fsdp = float(rows["ddp"][state]), float(rows["fsdp"][state])
    assert 0 < fsdp < ddp, proc.stdout
    # The ratio row is computed from the same numbers.
    ratio = float(re.sub(r"x$", "", rows["fsdp/ddp"][state]))
    assert ratio == pytest.approx(fsdp / ddp, abs=0.02)
