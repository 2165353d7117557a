"""Turn a submitted job document into a stored spec, refusing what could not run.

Everything checkable before a worker starts is checked here, each problem named by its key
path: the spec itself (gro_core.spec), that data.train / data.eval are datasets the caller
owns and of a kind the method trains on, that reward fields exist in a prompt dataset, that
python rewards are allowed, and that model references (a job or checkpoint id) resolve.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from gro_core.spec import (
    JobSpec,
    RewardSpec,
    SpecError,
    check_rewards_allowed,
    check_train_data,
    format_validation_error,
    is_online,
    load_spec,
)
from gro_core.spec.hub import HubDataset
from gro_core.spec.models import BUILTIN_PREFIX, builtin_problem, is_hub_id, looks_local
from gro_core.tasks import get_task
from server.config import Settings
from server.db.datasets import get_dataset
from server.db.jobs import get_job
from server.db.models import Dataset, Owner
from server.db.outputs import get_checkpoint
from server.errors import InvalidRequestError
from server.schemas.common import Problem
from server.services.limits import check_int_range


def invalid(path: str, message: str, code: str = "invalid_spec") -> InvalidRequestError:
    """The spec's key `path` cannot be used: the message starts with it."""
    return InvalidRequestError(code, f"{path}: {message}" if path else message, field=path or None)


def parse_spec(document: Any, prefix: str = "") -> JobSpec:
    """A JobSpec, or InvalidRequestError listing every problem by key path (`prefix` + path)."""
    check_int_range(document, prefix)
    try:
        return load_spec(document) if isinstance(document, dict) else load_spec(str(document))
    except (ValidationError, SpecError) as exc:
        problems = [
            Problem(
                code="invalid_spec",
                message=f"{prefix}{p['path'] or '<root>'}: {p['message']}",
                field=f"{prefix}{p['path']}".rstrip(".") or None,
            )
            for p in format_validation_error(exc)
        ]
        first = problems[0]
        raise InvalidRequestError(
            first.code, first.message, field=first.field, details=problems
        ) from exc


def _under_roots(name: str, roots: Sequence[Path]) -> bool:
    """Whether the directory `name` lies (links resolved) under one of `roots`."""
    resolved = Path(name).expanduser().resolve()
    return any(resolved.is_relative_to(Path(root).resolve()) for root in roots)


def check_model_ref(
    session: Session, owner: Owner, name: str, path: str, settings: Settings
) -> None:
    """`name` is a known builtin:, a hub id `org/name`, a visible job/checkpoint id, or a
    local directory under one of the operator's model roots; anything else is refused here
    rather than retried by a worker as a hub id."""
    if name.startswith("job-"):
        if get_job(session, owner, name) is None:
            raise invalid(path, f"no job {name!r} to start from", "not_found")
    elif name.startswith("ckpt-"):
        if get_checkpoint(session, owner, name) is None:
            raise invalid(path, f"no checkpoint {name!r}", "not_found")
    elif name.startswith(BUILTIN_PREFIX):
        problem = builtin_problem(name)
        if problem:
            raise invalid(path, problem, "not_found")
    elif looks_local(name) or not is_hub_id(name):
        if looks_local(name) and _under_roots(name, settings.model_roots):
            return
        roots = ", ".join(str(r) for r in settings.model_roots) or "none are allowed here"
        raise invalid(
            path,
            f"{name!r} is not a model this server can load: use builtin:<name>, a Hugging Face "
            f"id org/name, a job or checkpoint id, or a directory under the model roots "
            f"({roots})",
        )


def _dataset(session: Session, owner: Owner, ident: str | HubDataset, path: str) -> Dataset:
    if isinstance(ident, HubDataset):
        msg = "register a Hugging Face dataset with POST /v1/datasets/hub and use its id"
        raise invalid(path, msg)
    if not ident.startswith("ds-"):
        raise invalid(path, f"{ident!r} is not a dataset id: upload it with POST /v1/datasets")
    dataset = get_dataset(session, owner, ident)
    if dataset is None:
        raise invalid(path, f"no dataset {ident!r}", "not_found")
    return dataset


def _check_train(spec: JobSpec, train: Dataset) -> None:
    if spec.data.offline_mix > 0:
        if train.kind not in ("preference", "sft"):
            raise invalid(
                "data.train", f"offline_mix mixes preference or sft rows, not {train.kind} rows"
            )
        return
    try:
        check_train_data(spec, train.kind)
    except SpecError as exc:
        raise invalid(exc.path, exc.message) from exc
    if train.kind == "prompt" and is_online(spec, train.kind):
        check_reward_fields(spec.rewards, train)


def _check_eval(spec: JobSpec, held_out: Dataset, train_kind: str | None) -> None:
    """data.eval holds rows of the kind the job trains on (the worker reads it as that kind,
    so another kind would fail only once the run had started)."""
    if spec.data.offline_mix > 0:
        return  # held-out prompts come from data.task's eval split
    expected = train_kind or (get_task(spec.data.task).kind if spec.data.task else None)
    if expected is not None and held_out.kind != expected:
        raise invalid(
            "data.eval",
            f"the job trains on {expected} rows, so its held-out rows must be {expected} too; "
            f"{held_out.id} holds {held_out.kind} rows",
        )


def check_reward_fields(rewards: Sequence[RewardSpec], train: Dataset) -> None:
    """Rewards that read a row field need it in the dataset (found at submit, not mid-run)."""
    fields = set(train.stats.get("extra_fields", [])) | {"prompt"}
    for i, reward in enumerate(rewards):
        field = getattr(reward, "field", None)
        if field and field not in fields:
            have = ", ".join(sorted(fields))
            raise invalid(
                f"rewards.{i}.field", f"dataset {train.id} has no field {field!r} (it has: {have})"
            )


def check_references(
    session: Session, owner: Owner, spec: JobSpec, settings: Settings
) -> list[str]:
    """Refuse what the spec references but cannot use; the dataset ids it reads."""
    datasets: list[str] = []
    if spec.data.train:
        train = _dataset(session, owner, spec.data.train, "data.train")
        _check_train(spec, train)
        datasets.append(train.id)
    if spec.data.eval:
        held_out = _dataset(session, owner, spec.data.eval, "data.eval")
        _check_eval(spec, held_out, train.kind if spec.data.train else None)
        datasets.append(held_out.id)
    try:
        check_rewards_allowed(spec.rewards, settings.allow_python_rewards)
    except SpecError as exc:
        raise invalid(exc.path, exc.message, "python_rewards_disabled") from exc
    check_model_ref(session, owner, spec.model, "model", settings)
    if spec.reference_model:
        check_model_ref(session, owner, spec.reference_model, "reference_model", settings)
    for i, reward in enumerate(spec.rewards):
        if reward.type == "reward_model":
            check_model_ref(session, owner, reward.model, f"rewards.{i}.model", settings)
    return datasets


def total_steps(spec: JobSpec, session: Session, owner: Owner) -> int | None:
    """Steps the run will take, when known before it starts (epochs depend on the data)."""
    if spec.train.epochs is None:
        return spec.train.steps
    if spec.data.train:
        dataset = get_dataset(session, owner, spec.data.train)
        if dataset is not None:
            return spec.train.epochs * -(-dataset.rows // spec.train.batch_size)
    return None
