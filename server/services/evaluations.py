"""Evaluations: a model on held-out prompts, run by a worker on the light queue.

The request becomes a job of kind `evaluation` whose stored spec holds the request and the
data spec gro_core's evaluation reads (prompts, rewards, rollout settings).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy.orm import Session

from gro_core.tasks import get_task
from server.config import Settings
from server.db.datasets import get_dataset
from server.db.jobs import create_job
from server.db.models import Job, Owner
from server.db.outputs import iter_samples
from server.db.session import new_session
from server.queue import JobQueue
from server.schemas.evaluations import EvaluationIn, EvaluationOut
from server.services.jobs import enqueue, job_error
from server.services.specs import check_model_ref, check_references, invalid, parse_spec


def _data(session: Session, owner: Owner, dataset: str) -> dict[str, Any]:
    if dataset.startswith("builtin:"):
        try:
            task = get_task(dataset)
        except ValueError as exc:
            raise invalid("dataset", str(exc)) from exc
        if task.kind != "prompt":
            raise invalid(
                "dataset",
                f"evaluations sample completions of prompts: {dataset} is a {task.kind} task",
            )
        return {"task": dataset}
    found = get_dataset(session, owner, dataset) if dataset.startswith("ds-") else None
    if found is None:
        raise invalid("dataset", f"no dataset {dataset!r}", "not_found")
    if found.kind != "prompt":
        raise invalid(
            "dataset",
            f"evaluations sample completions of prompts: {dataset} holds {found.kind} rows",
        )
    return {"train": dataset, "eval": dataset}


def data_spec(request: EvaluationIn, data: dict[str, Any]) -> dict[str, Any]:
    """A job spec carrying what evaluation reads. The method is any online one without groups
    (remax): the spec's checks then apply to the prompts and rewards as they would in training."""
    return {
        "model": request.model,
        "method": "remax",
        "data": data,
        "rewards": [r.model_dump() for r in request.rewards],
        "rollout": {
            "num_generations": request.num_generations,
            "max_new_tokens": request.max_new_tokens,
            "temperature": request.temperature,
        },
        "eval": {"num_prompts": request.num_prompts},
        "train": {"seed": request.seed},
    }


def submit_evaluation(
    session: Session, owner: Owner, request: EvaluationIn, settings: Settings
) -> Job:
    check_model_ref(session, owner, request.model, "model")
    spec = parse_spec(data_spec(request, _data(session, owner, request.dataset)))
    if not spec.rewards and spec.data.task is None:
        raise invalid("rewards", "a dataset needs rewards to score completions (e.g. exact_match)")
    datasets = check_references(session, owner, spec, settings)
    stored = {"request": request.model_dump(mode="json"), "data_spec": spec.model_dump(mode="json")}
    return create_job(
        session,
        owner,
        stored,
        kind="evaluation",
        method="evaluate",
        datasets=datasets,
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


def completion_lines(url: str, job_id: str) -> Iterator[bytes]:
    """One JSON row per completion: prompt, completion, reward and the prompt row's fields, so
    the file uploads again as an sft dataset (add `label` to make it unpaired). Its own
    session: the response streams after the request's session has closed."""
    with new_session(url) as session:
        for sample in iter_samples(session, job_id):
            row = {
                **sample.extra,
                "prompt": sample.prompt,
                "completion": sample.completion,
                "reward": sample.reward,
            }
            yield (json.dumps(row, ensure_ascii=False) + "\n").encode()


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
