"""What a stored spec names by id, turned into files this worker can read: dataset ids into
their stored files, job and checkpoint ids into checkpoint directories."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from server.db.datasets import dataset_file
from server.db.models import ACTIVE_STATUSES, Checkpoint, Dataset, Job
from server.db.outputs import latest_checkpoint


class NotReadyError(Exception):
    """The spec starts from a job that has not finished yet: try again later."""


class BadReferenceError(ValueError):
    """The spec names something that cannot be used (deleted, failed without checkpoints)."""


def _model_path(session: Session, storage: Path, name: str) -> str:
    if name.startswith("ckpt-"):
        checkpoint = session.get(Checkpoint, name)
        if checkpoint is None:
            raise BadReferenceError(f"checkpoint {name} no longer exists")
    elif name.startswith("job-"):
        job = session.get(Job, name)
        if job is None:
            raise BadReferenceError(f"job {name} no longer exists")
        if job.status in ACTIVE_STATUSES:
            raise NotReadyError(f"waiting for {name} ({job.status}) to finish")
        checkpoint = latest_checkpoint(session, name)
        if checkpoint is None:
            raise BadReferenceError(f"job {name} ({job.status}) left no checkpoint to start from")
    else:
        return name
    directory = storage / checkpoint.path
    if not directory.is_dir():
        raise BadReferenceError(f"the files of checkpoint {checkpoint.id} are gone")
    return str(directory)


def _dataset_path(session: Session, storage: Path, ident: str) -> str:
    dataset = session.get(Dataset, ident)
    if dataset is None:
        raise BadReferenceError(f"dataset {ident} was deleted")
    return str(dataset_file(storage, dataset))


def resolve_generation(session: Session, storage: Path, request: dict[str, Any]) -> dict[str, Any]:
    """A generation request with each model's id replaced by its checkpoint directory. A
    model that cannot be used, or a job still running (a playground does not wait for it: its
    checkpoints can be picked), leaves its error in `problems` (index -> message) rather than
    failing the others."""
    models: list[str | None] = []
    problems: dict[str, str] = {}
    for i, name in enumerate(request["checkpoints"]):
        try:
            models.append(_model_path(session, storage, name))
        except BadReferenceError as exc:
            models.append(None)
            problems[str(i)] = str(exc)
        except NotReadyError:
            models.append(None)
            problems[str(i)] = f"{name} has not finished: pick one of its checkpoints"
    return {**request, "models": models, "problems": problems}


def resolve_spec(session: Session, storage: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """A copy of a stored spec document with every id replaced by a local path."""
    out = {
        **spec,
        "data": dict(spec["data"]),
        "rewards": [dict(r) for r in spec.get("rewards", [])],
    }
    for key in ("train", "eval"):
        if out["data"].get(key):
            out["data"][key] = _dataset_path(session, storage, out["data"][key])
    out["model"] = _model_path(session, storage, out["model"])
    if out.get("reference_model"):
        out["reference_model"] = _model_path(session, storage, out["reference_model"])
    for reward in out["rewards"]:
        if reward.get("type") == "reward_model":
            reward["model"] = _model_path(session, storage, reward["model"])
    return out
