"""/v1/evaluations: evaluate a model on held-out prompts; download its completions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from server.api.deps import OwnerDep, QueueDep, SessionDep, SettingsDep
from server.api.errors import not_found
from server.db import jobs as db_jobs
from server.db.models import Job, Sample
from server.db.session import new_session
from server.schemas.common import ERRORS, Page
from server.schemas.evaluations import EvaluationIn, EvaluationOut
from server.services.evaluations import evaluation_out, submit_evaluation
from server.services.jobs import enqueue

router = APIRouter(prefix="/v1/evaluations", tags=["evaluations"], responses=ERRORS)


def _out(job: Job, request: Request) -> EvaluationOut:
    return evaluation_out(job, f"{request.base_url}v1/evaluations/{job.id}/completions.jsonl")


def _owned(session: SessionDep, owner: OwnerDep, evaluation_id: str) -> Job:
    job = db_jobs.get_job(session, owner, evaluation_id, kind="evaluation")
    if job is None:
        raise not_found("evaluation", evaluation_id)
    return job


@router.post("", status_code=201, response_model=EvaluationOut, summary="Start an evaluation")
def create(
    body: EvaluationIn,
    request: Request,
    session: SessionDep,
    owner: OwnerDep,
    settings: SettingsDep,
    queue: QueueDep,
) -> EvaluationOut:
    """Held-out reward (greedy and sampled), pass@k, KL to the reference and diversity, run on
    the light queue; the generated completions are kept for download."""
    job = submit_evaluation(session, owner, body, settings)
    session.commit()
    enqueue(session, queue, job)
    return _out(job, request)


@router.get("", response_model=Page[EvaluationOut], summary="List evaluations, newest first")
def list_all(
    request: Request,
    session: SessionDep,
    owner: OwnerDep,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Page[EvaluationOut]:
    rows, more = db_jobs.list_jobs(session, owner, after=after, limit=limit, kind="evaluation")
    return Page.of([_out(j, request) for j in rows], more)


@router.get("/{evaluation_id}", response_model=EvaluationOut, summary="Get an evaluation")
def get_one(
    evaluation_id: str, request: Request, session: SessionDep, owner: OwnerDep
) -> EvaluationOut:
    return _out(_owned(session, owner, evaluation_id), request)


def _completion_lines(url: str, job_id: str) -> Iterator[bytes]:
    """One JSON row per completion: prompt, completion, reward and the prompt row's fields, so
    the file uploads again as an sft dataset (add `label` to make it unpaired)."""
    with new_session(url) as session:
        query = select(Sample).where(Sample.job_id == job_id).order_by(Sample.step, Sample.idx)
        for sample in session.scalars(query).yield_per(500):
            row = {
                **sample.extra,
                "prompt": sample.prompt,
                "completion": sample.completion,
                "reward": sample.reward,
            }
            yield (json.dumps(row, ensure_ascii=False) + "\n").encode()


@router.get(
    "/{evaluation_id}/completions.jsonl",
    summary="Download the generated completions (JSONL)",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/jsonl": {}}, "description": "one row a line"}},
)
def completions(
    evaluation_id: str, session: SessionDep, owner: OwnerDep, settings: SettingsDep
) -> StreamingResponse:
    job = _owned(session, owner, evaluation_id)
    return StreamingResponse(
        _completion_lines(settings.database_url, job.id),
        media_type="application/jsonl",
        headers={"Content-Disposition": f'attachment; filename="{job.id}-completions.jsonl"'},
    )
