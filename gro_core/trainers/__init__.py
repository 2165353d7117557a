"""Trainers: one loop (loop.py) and one objective per family of methods.

from gro_core.trainers import run
result = run(load_spec("job.yaml"), "runs/job", callbacks=[JsonlWriter("runs/job")])
"""

from gro_core.trainers.callbacks import Callback, CallbackList, JsonlWriter, ProgressBar
from gro_core.trainers.datasets import DataError
from gro_core.trainers.loop import RunResult, Trainer, TrainingError, run

__all__ = [
    "Callback",
    "CallbackList",
    "DataError",
    "JsonlWriter",
    "ProgressBar",
    "RunResult",
    "Trainer",
    "TrainingError",
    "run",
]
