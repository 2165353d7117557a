"""Evaluations: a model on held-out prompts, run by a worker on the light queue.

The request becomes a job of kind `evaluation` whose stored spec holds the request and the
gro_core EvaluationSpec the worker runs (prompts, rewards, sampling settings).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio
from pydantic import ValidationError
from sqlalchemy.orm import Session

from gro_core.evaluation.spec import EvaluationSpec
from gro_core.spec import SpecError, check_rewards_allowed, format_validation_error
from gro_core.spec.hub import HUB_TAG
from server.config import Settings
from server.db.datasets import get_dataset
from server.db.jobs import create_job
from server.db.models import Dataset, Job, Owner, Sample
from server.db.outputs import samples_after
from server.db.session import new_session
from server.queue import JobQueue
from server.schemas.evaluations import EvaluationIn, EvaluationOut
from server.services.jobs import enqueue, job_error
from server.services.limits import check_active_jobs, check_sizes
from server.services.specs import check_model_ref, check_reward_fields, invalid


def _data(session: Session, owner: Owner, dataset: str) -> tuple[dict[str, Any], Dataset | None]:
    """The evaluation's `data` section and the dataset it reads, if any."""
    if dataset.startswith("builtin:"):
        return {"task": dataset}, None
    if dataset.startswith(f"{HUB_TAG}:"):  # read once at registration, validated, then by id
        msg = "register a Hugging Face dataset with POST /v1/datasets/hub and use its id"
        raise invalid("dataset", msg)
    found = get_dataset(session, owner, dataset) if dataset.startswith("ds-") else None
    if found is None:
        raise invalid("dataset", f"no dataset {dataset!r}", "not_found")
    if found.kind != "prompt":
        raise invalid(
            "dataset",
            f"evaluations sample completions of prompts: {dataset} holds {found.kind} rows",
        )
    return {"eval": dataset}, found


def evaluation_document(request: EvaluationIn, data: dict[str, Any]) -> dict[str, Any]:
    """The request as gro_core's EvaluationSpec (what the worker runs)."""
    return {
        "name": request.name,
        "model": request.model,
        "data": data,
        "rewards": [r.model_dump() for r in request.rewards],
        "num_prompts": request.num_prompts,
        "num_generations": request.num_generations,
        "max_new_tokens": request.max_new_tokens,
        "temperature": request.temperature,
        "seed": request.seed,
        "with_reference": request.with_reference,
    }


def _parse(document: dict[str, Any]) -> EvaluationSpec:
    """The validated spec; its first problem as a 422 named by the request's field."""
    try:
        return EvaluationSpec.model_validate(document)
    except ValidationError as exc:
        problem = format_validation_error(exc, EvaluationSpec)[0]
        path = "dataset" if problem["path"].startswith("data") else problem["path"]
        raise invalid(path, problem["message"]) from exc


def _check(session: Session, owner: Owner, spec: EvaluationSpec, settings: Settings) -> None:
    try:
        check_rewards_allowed(spec.rewards, settings.allow_python_rewards)
    except SpecError as exc:
        raise invalid(exc.path, exc.message, "python_rewards_disabled") from exc
    check_model_ref(session, owner, spec.model, "model", settings)
    for i, reward in enumerate(spec.rewards):
        if reward.type == "reward_model":
            check_model_ref(session, owner, reward.model, f"rewards.{i}.model", settings)


def check_evaluation_limits(
    session: Session, owner: Owner, request: EvaluationIn, settings: Settings
) -> None:
    """The server's maxima for the request's sizes, and the owner's active-jobs quota."""
    sizes = [
        ("num_prompts", request.num_prompts, "limit_eval_num_prompts", ""),
        ("num_generations", request.num_generations, "limit_num_generations", ""),
        ("max_new_tokens", request.max_new_tokens, "limit_max_new_tokens", ""),
        ("rewards", len(request.rewards), "limit_rewards", "a list of length "),
    ]
    if request.name is not None:
        sizes.append(("name", len(request.name), "limit_name_chars", "a name of length "))
    check_sizes(sizes, settings)
    check_active_jobs(session, owner, settings)


def submit_evaluation(
    session: Session, owner: Owner, request: EvaluationIn, settings: Settings
) -> Job:
    check_evaluation_limits(session, owner, request, settings)
    check_model_ref(session, owner, request.model, "model", settings)
    data, dataset = _data(session, owner, request.dataset)
    spec = _parse(evaluation_document(request, data))
    _check(session, owner, spec, settings)
    if dataset is not None:
        check_reward_fields(spec.rewards, dataset)
    stored = {
        "request": request.model_dump(mode="json"),
        "evaluation_spec": spec.model_dump(mode="json"),
    }
    return create_job(
        session,
        owner,
        stored,
        kind="evaluation",
        method="evaluate",
        datasets=[dataset.id] if dataset is not None else [],
        name=request.name,
    )


def start_evaluation(
    session: Session, queue: JobQueue, owner: Owner, request: EvaluationIn, settings: Settings
) -> Job:
    """Store the evaluation as a queued job, commit, then send it to the light queue."""
    job = submit_evaluation(session, owner, request, settings)
    session.commit()
    enqueue(session, queue, job)
    return job


EXPORT_PAGE = 200
"""Samples read per session of an export: a page is read, its session closed, then sent."""


def _export_page(url: str, job_id: str, after: tuple[int, int] | None) -> list[Sample]:
    with new_session(url) as session:
        rows = samples_after(session, job_id, after, EXPORT_PAGE)
        session.expunge_all()  # read whole: the rows outlive their session
    return rows


def _line(sample: Sample) -> bytes:
    row = {
        **sample.extra,
        "prompt": sample.prompt,
        "completion": sample.completion,
        "reward": sample.reward,
    }
    return (json.dumps(row, ensure_ascii=False) + "\n").encode()


async def completion_lines(
    slots: AbstractAsyncContextManager[Any], url: str, job_id: str
) -> AsyncIterator[bytes]:
    """One JSON row per completion: prompt, completion, reward and the prompt row's fields, so
    the file uploads again as an sft dataset (add `label` to make it unpaired).

    Read a page at a time, each in a session of its own taken under the API's database slots
    (`slots`, see server.api.deps.get_session) and closed before the page is sent: a client
    that reads slowly holds no connection, so concurrent exports cannot starve the pool."""
    after: tuple[int, int] | None = None
    while True:
        async with slots:
            rows = await anyio.to_thread.run_sync(_export_page, url, job_id, after)
        if not rows:
            return
        yield b"".join(_line(sample) for sample in rows)
        after = (rows[-1].step, rows[-1].idx)


def evaluation_out(job: Job, completions_url: str) -> EvaluationOut:
    request = job.spec["request"]
    return EvaluationOut(
        id=job.id,
        name=job.name,
        status=job.status,
        model=request["model"],
        dataset=request["dataset"],
        request=request,
        results=job.final_metrics or {},
        created_at=job.created_at,
        finished_at=job.finished_at,
        error=job_error(job),
        completions_url=completions_url,
    )
