"""Trainers: one loop (loop.py) and one objective per family of methods.

    loop.py             the step loop, optimizer, schedule, evaluation and checkpoint cadence
    protocol.py         Objective: what the loop asks of every objective (collect, step, ...)
    build.py            the objective a method's registry record names, with its reference
    offline.py          sft, reward_model, and gro_loss methods on fixed data
    online.py           gro_loss methods on scored rollouts of prompts
    datasets.py         the run's data, read and encoded; reference_cache.py, chunking.py,
                        prompt_sharing.py: how sequences are scored; checkpoint.py, callbacks.py
    trackers/           the spec's integrations: TensorBoard, W&B and MLflow callbacks

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
