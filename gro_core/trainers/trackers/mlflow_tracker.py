"""MLflow: a run in the operator's tracking server, or a local store in RUN/mlflow/."""

from __future__ import annotations

import os
import re
import time
from typing import Any

from gro_core.trainers.trackers.common import (
    Tracker,
    flatten,
    resolved_spec,
    sample_columns,
    sample_rows,
)

_STATUSES = {"succeeded": "FINISHED", "cancelled": "KILLED", "failed": "FAILED"}
_PARAM_CHARS = 6000  # MLflow's longest param value
_BATCH = 1000  # MLflow's most metrics per log_batch call
_NOT_IN_NAMES = re.compile(r"[^\w\-. :/]")


def mlflow_name(metric: str) -> str:
    """A metric's name as MLflow accepts it: `eval/pass@4` -> `eval/pass_at_4` (MLflow allows
    only letters, digits and _ - . space : /)."""
    return _NOT_IN_NAMES.sub("_", metric.replace("@", "_at_"))


class MlflowWriter(Tracker):
    module = "mlflow"

    def _store(self) -> tuple[str, str | None]:
        """(tracking URI, artifact location of a new experiment): the operator's server when
        MLFLOW_TRACKING_URI is set (its credentials come from the environment too), else an
        SQLite store and artifacts under RUN/mlflow/."""
        remote = os.environ.get("MLFLOW_TRACKING_URI")
        if remote:
            return remote, None
        root = (self.out_dir / "mlflow").resolve()
        root.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{root / 'mlflow.db'}", (root / "artifacts").as_uri()

    def open(self) -> None:
        from mlflow import MlflowClient
        from mlflow.entities import Param

        uri, artifacts = self._store()
        self.client = MlflowClient(tracking_uri=uri)
        found = self.client.get_experiment_by_name(self.config.experiment)
        experiment = (
            found.experiment_id
            if found
            else self.client.create_experiment(self.config.experiment, artifacts)
        )
        tags = {"gro.method": self.spec.method, "gro.model": self.spec.model}
        if self.resumed_from is not None:
            tags["gro.resumed_from_step"] = str(self.resumed_from)
        run = self.client.create_run(experiment, run_name=self.run_name(), tags=tags)
        self.run_id = run.info.run_id
        spec = resolved_spec(self.spec)
        params = [Param(k, str(v)[:_PARAM_CHARS]) for k, v in flatten(spec).items()]
        for i in range(0, len(params), 100):  # MLflow's most params per batch
            self.client.log_batch(self.run_id, params=params[i : i + 100])
        self.client.log_dict(self.run_id, spec, "spec.json")
        self.pending: list[tuple[int, list[dict[str, Any]]]] = []

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        points = [Metric(mlflow_name(k), float(v), now, step) for k, v in metrics.items()]
        for i in range(0, len(points), _BATCH):
            self.client.log_batch(self.run_id, metrics=points[i : i + _BATCH])

    def log_samples(self, step: int, samples: list[dict[str, Any]]) -> None:
        # Written at checkpoints and at the end: MLflow rewrites the whole table artifact on
        # every append, so one write per step would grow quadratically.
        self.pending.append((step, samples))

    def _write_samples(self) -> None:
        if not self.pending:
            return
        everything = [s for _, samples in self.pending for s in samples]
        columns = sample_columns(everything)
        rows = [r for step, samples in self.pending for r in sample_rows(step, samples, columns)]
        table = {c: [row[i] for row in rows] for i, c in enumerate(columns)}
        self.client.log_table(self.run_id, data=table, artifact_file="samples.json")
        self.pending = []

    def on_checkpoint(self, step: int, path: Any) -> None:
        if self.opened:
            self._write_samples()

    def close(self, status: str) -> None:
        self._write_samples()
        self.client.set_terminated(self.run_id, status=_STATUSES.get(status, "FAILED"))
