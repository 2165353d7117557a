"""/v1/evaluations: evaluate a model on held-out prompts; download its completions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from server.api.deps import EvaluationDep, OwnerDep, QueueDep, SessionDep, SettingsDep
from server.db.jobs import list_jobs
from server.db.models import Job
from server.schemas.common import ERRORS, Page
from server.schemas.evaluations import EvaluationIn, EvaluationOut
from server.services.evaluations import completion_lines, evaluation_out, start_evaluation

router = APIRouter(prefix="/v1/evaluations", tags=["evaluations"], responses=ERRORS)


def _out(job: Job, request: Request) -> EvaluationOut:
    return evaluation_out(job, f"{request.base_url}v1/evaluations/{job.id}/completions.jsonl")


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
    return _out(start_evaluation(session, queue, owner, body, settings), request)


@router.get("", response_model=Page[EvaluationOut], summary="List evaluations, newest first")
def list_all(
    request: Request,
    session: SessionDep,
    owner: OwnerDep,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Page[EvaluationOut]:
    rows, more = list_jobs(session, owner, after=after, limit=limit, kind="evaluation")
    return Page.of([_out(j, request) for j in rows], more)


@router.get("/{evaluation_id}", response_model=EvaluationOut, summary="Get an evaluation")
def get_one(evaluation: EvaluationDep, request: Request) -> EvaluationOut:
    return _out(evaluation, request)


@router.get(
    "/{evaluation_id}/completions.jsonl",
    summary="Download the generated completions (JSONL)",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/jsonl": {}}, "description": "one row a line"}},
)
def completions(
    evaluation: EvaluationDep, request: Request, settings: SettingsDep
) -> StreamingResponse:
    """Streamed a page at a time, each read in a short session of its own."""
    return StreamingResponse(
        completion_lines(request.app.state.db_slots, settings.database_url, evaluation.id),
        media_type="application/jsonl",
        headers={
            "Content-Disposition": f'attachment; filename="{evaluation.id}-completions.jsonl"'
        },
    )
