"""Every gro_core module can be the first one imported: no import cycle hides behind a package's
__init__ (importing `a.b.c` runs `a/__init__` and `a/b/__init__` first, which the file graph of
tests/test_architecture.py does not count), whatever order a caller imports them in."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Each module is imported in a fresh state of gro_core (torch and the libraries stay loaded,
# so this costs one interpreter, not one per module).
_IMPORT_EACH_FIRST = """
import importlib, sys
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "gro_core" or m.startswith("gro_core.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed.append(f"{name}: {exc!r}")
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def _modules() -> list[str]:
    names = []
    for path in sorted((ROOT / "gro_core").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__main__":
            continue  # running it is the point: it starts the command line
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


@pytest.mark.slow
def test_every_gro_core_module_imports_first() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_EACH_FIRST, *_modules()],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
