"""The app as uvicorn serves it (`server.main:app`), in a process of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_the_served_app_keeps_its_startup_objects_out_of_the_collector(tmp_path: Path) -> None:
    # A full collection that walked the ~130k objects alive at startup stopped every request
    # for 55-100 ms several times a minute: the API's p99 under load (bench/load.py).
    env = os.environ | {
        "GRO_DATABASE_URL": f"sqlite:///{tmp_path}/gro.db",
        "GRO_STORAGE_DIR": str(tmp_path / "storage"),
    }
    code = "import gc, server.main as m; m.app; print(gc.get_freeze_count(), *gc.get_threshold())"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    frozen, young, *_ = map(int, out.stdout.split())
    assert frozen > 50_000  # the libraries and the app
    assert young >= 10_000  # young collections far rarer than every 700 allocations
