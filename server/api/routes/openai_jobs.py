"""/v1/fine_tuning/jobs, OpenAI's fine-tuning API over gro's jobs: the same submit, cancel,
pause and resume services as /v1/jobs, shown as the `openai` SDK's objects."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Query, Request

from server.api.deps import JobDep, OwnerDep, QueueDep, SessionDep, SettingsDep
from server.db.openai_reads import jobs_page
from server.errors import InvalidRequestError
from server.schemas.common import ERRORS
from server.schemas.openai import (
    FineTuningJobCreate,
    FineTuningJobOut,
    JobCheckpointOut,
    JobEventOut,
    OpenAIList,
)
from server.services.jobs import cancel_job, enqueue, pause_job, resume_job, submit_job
from server.services.openai_map import as_request_error, map_request
from server.services.openai_out import checkpoints_page, events_page, job_out

router = APIRouter(prefix="/v1/fine_tuning/jobs", tags=["openai"], responses=ERRORS)
_METADATA_KEY = re.compile(r"metadata\[(.+)\]")


@router.post("", response_model=FineTuningJobOut, summary="Create a fine-tuning job (OpenAI)")
def create(
    body: FineTuningJobCreate,
    session: SessionDep,
    owner: OwnerDep,
    settings: SettingsDep,
    queue: QueueDep,
) -> FineTuningJobOut:
    """The request becomes a gro job spec (docs/openai.md), validated and queued like any."""
    mapped = map_request(body, settings.allow_python_rewards)
    try:
        job = submit_job(
            session, owner, mapped.document, settings, seed=mapped.seed, openai=mapped.fields
        )
    except InvalidRequestError as exc:
        raise as_request_error(exc) from exc
    session.commit()
    enqueue(session, queue, job)
    return job_out(job)


@router.get("", response_model=OpenAIList[FineTuningJobOut], summary="List jobs (OpenAI)")
def list_all(
    request: Request,
    session: SessionDep,
    owner: OwnerDep,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> OpenAIList[FineTuningJobOut]:
    """Newest first, gro's own jobs included; `metadata[k]=v` keeps jobs whose metadata has
    that key and value (every one given)."""
    metadata = {
        match.group(1): value
        for key, value in request.query_params.multi_items()
        if (match := _METADATA_KEY.fullmatch(key))
    }
    rows, more = jobs_page(session, owner, after, limit, metadata)
    return OpenAIList.of([job_out(j) for j in rows], more)


@router.get("/{job_id}", response_model=FineTuningJobOut, summary="Get a job (OpenAI)")
def retrieve(job: JobDep) -> FineTuningJobOut:
    return job_out(job)


@router.post("/{job_id}/cancel", response_model=FineTuningJobOut, summary="Cancel (OpenAI)")
def cancel(job: JobDep, session: SessionDep) -> FineTuningJobOut:
    return job_out(cancel_job(session, job))


@router.post("/{job_id}/pause", response_model=FineTuningJobOut, summary="Pause (OpenAI)")
def pause(job: JobDep, session: SessionDep) -> FineTuningJobOut:
    """Stops after the current step with a checkpoint; the job then shows `paused`."""
    return job_out(pause_job(session, job))


@router.post("/{job_id}/resume", response_model=FineTuningJobOut, summary="Resume (OpenAI)")
def resume(job: JobDep, session: SessionDep, queue: QueueDep) -> FineTuningJobOut:
    """Continues a paused (or failed, cancelled) job from its last checkpoint."""
    return job_out(resume_job(session, queue, job))


@router.get("/{job_id}/events", response_model=OpenAIList[JobEventOut], summary="Events (OpenAI)")
def events(
    job: JobDep,
    session: SessionDep,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> OpenAIList[JobEventOut]:
    """Newest first; eval and checkpoint events carry their step's metrics (`type: metrics`)."""
    return events_page(session, job, after, limit)


@router.get(
    "/{job_id}/checkpoints",
    response_model=OpenAIList[JobCheckpointOut],
    summary="Checkpoints (OpenAI)",
)
def checkpoints(
    job: JobDep,
    session: SessionDep,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> OpenAIList[JobCheckpointOut]:
    """Newest first; `fine_tuned_model_checkpoint` works as the `model` of another job."""
    return checkpoints_page(session, job, after, limit)
