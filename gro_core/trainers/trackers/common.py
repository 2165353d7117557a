"""What the trackers share: the import check, the lazily opened run, flattened specs and the
samples table."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from gro_core.spec import JobSpec, SpecError
from gro_core.trainers.callbacks import Callback

EXTRA = "trackers"


def require(module: str, tracker: str, path: str) -> None:
    """Import `module` or refuse the job (SpecError on `path`) naming the extra to install."""
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise SpecError(
            path,
            f"the {tracker} tracker needs the {module.split('.')[0]} package, which is not "
            f"installed here ({exc}): pip install 'gro[{EXTRA}]'",
        ) from exc


class Tracker(Callback):
    """A tracker's run, opened on the first record (a job that fails while loading its model
    leaves no empty run behind) and closed by `on_run_end`."""

    module = ""  # what `require` imports before the job starts

    def __init__(self, config: Any, spec: JobSpec, out_dir: Path) -> None:
        self.config, self.spec, self.out_dir = config, spec, out_dir
        self.resumed_from: int | None = None
        self.opened = False

    def open(self) -> None:
        """Start the library's run; `self.resumed_from` is set when the job resumes."""

    def close(self, status: str) -> None:
        """End the library's run with the job's status (succeeded, cancelled, failed)."""

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        """Write one step's metrics."""

    def log_samples(self, step: int, samples: list[dict[str, Any]]) -> None:
        """Write one step's samples as a table."""

    def _ensure_open(self) -> None:
        if not self.opened:
            self.open()
            self.opened = True

    def run_name(self) -> str | None:
        return self.config.run_name or self.spec.name

    def on_resume(self, step: int) -> None:
        self.resumed_from = step

    def on_event(self, step: int, kind: str, message: str) -> None:
        self._ensure_open()

    def on_metrics(self, step: int, metrics: dict[str, float]) -> None:
        self._ensure_open()
        self.log_metrics(step, metrics)

    def on_samples(self, step: int, samples: list[dict[str, Any]]) -> None:
        self._ensure_open()
        self.log_samples(step, samples)

    def on_run_end(self, status: str) -> None:
        if self.opened:
            self.close(status)
            self.opened = False


def resolved_spec(spec: JobSpec) -> dict[str, Any]:
    """The spec as run: every default written out."""
    return spec.model_dump(mode="json")


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings and lists as dotted keys: {"train": {"lr": 1e-5}} -> {"train.lr": 1e-5};
    an empty mapping or list is kept as itself."""
    if isinstance(value, dict) and value:
        items = value.items()
    elif isinstance(value, list) and value:
        items = ((str(i), v) for i, v in enumerate(value))
    else:
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, item in items:
        flat |= flatten(item, f"{prefix}.{key}" if prefix else str(key))
    return flat


def sample_columns(samples: list[dict[str, Any]]) -> list[str]:
    """The samples' keys in first-seen order, behind a `step` column."""
    columns = ["step"]
    for sample in samples:
        columns += [k for k in sample if k not in columns]
    return columns


def sample_rows(step: int, samples: list[dict[str, Any]], columns: list[str]) -> list[list[Any]]:
    return [[step, *(sample.get(c) for c in columns[1:])] for sample in samples]
