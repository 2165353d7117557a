"""Experiment trackers (the spec's `integrations`): callbacks that write a run to TensorBoard,
Weights & Biases or MLflow through those libraries, beside the run's own outputs.

    callbacks = open_trackers(spec, out_dir)   # SpecError naming the extra when one is missing

The trainer adds them to its callbacks on the main rank, so `gro train` and the workers write
the same trackers. Each opens its run on the first record it gets and closes it in
`on_run_end`; credentials come from the environment, read by the libraries themselves.
"""

from __future__ import annotations

from pathlib import Path

from gro_core.spec import JobSpec
from gro_core.trainers.callbacks import Callback
from gro_core.trainers.trackers.common import Tracker, require
from gro_core.trainers.trackers.mlflow_tracker import MlflowWriter
from gro_core.trainers.trackers.tensorboard_tracker import TensorBoardWriter
from gro_core.trainers.trackers.wandb_tracker import WandbWriter

_WRITERS: dict[str, type[Tracker]] = {
    "tensorboard": TensorBoardWriter,
    "wandb": WandbWriter,
    "mlflow": MlflowWriter,
}


def open_trackers(spec: JobSpec, out_dir: Path) -> list[Callback]:
    """One callback per entry of spec.integrations; their libraries are imported here, so a
    missing one stops the job before its model is loaded."""
    trackers: list[Callback] = []
    for index, config in enumerate(spec.integrations):
        writer = _WRITERS[config.type]
        require(writer.module, config.type, f"integrations.{index}")
        trackers.append(writer(config, spec, Path(out_dir)))
    return trackers


__all__ = ["open_trackers"]
