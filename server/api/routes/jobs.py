"""/v1/jobs: submit, list, read, cancel, pause, resume; events (pages and SSE), metrics, samples and
checkpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Header, Query, Request
from fastapi.responses import Response, StreamingResponse

from server.api.deps import JobDep, OwnerDep, QueueDep, SessionDep, SettingsDep
from server.api.events import event_id_header, event_stream
from server.db import outputs
from server.schemas.common import DB_INT_MAX, ERRORS, Page
from server.schemas.jobs import (
    SPEC_EXAMPLE,
    CheckpointOut,
    EventOut,
    JobOut,
    MetricsOut,
    SampleOut,
    SamplesOut,
    SpecDocument,
)
from server.services.job_list import jobs_page_json
from server.services.jobs import (
    cancel_job,
    checkpoint_out,
    job_out,
    pause_job,
    resume_job,
    start_job,
)
from server.services.metrics import metrics_json
from server.services.response_cache import Encoded

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=ERRORS)


@router.post("", status_code=201, response_model=JobOut, summary="Submit a job")
def create(
    spec: Annotated[
        SpecDocument, Body(description="a job spec (docs/jobspec.md)", examples=[SPEC_EXAMPLE])
    ],
    session: SessionDep,
    owner: OwnerDep,
    settings: SettingsDep,
    queue: QueueDep,
) -> JobOut:
    """Validate the spec (422 naming the key), store the job as `queued`, then enqueue it."""
    return job_out(start_job(session, queue, owner, spec, settings))


@router.get(
    "",
    response_model=Page[JobOut],
    summary="List jobs, newest first",
    responses={304: {"description": "unchanged since the ETag sent in If-None-Match"}},
)
def list_all(
    session: SessionDep,
    owner: OwnerDep,
    request: Request,
    status: str | None = None,
    method: str | None = None,
    name: Annotated[str | None, Query(description="case-insensitive substring")] = None,
    comparison_id: str | None = None,
    after: Annotated[str | None, Query(description="the last id of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    if_none_match: Annotated[
        str | None, Header(description="the ETag of an earlier answer: 304 if unchanged")
    ] = None,
) -> Response:
    """Answers carry an ETag; a poll that sends it back gets 304 until one of the caller's
    jobs changes (a new job, a status, progress)."""
    filters = {"status": status, "method": method, "name": name, "comparison_id": comparison_id}
    cache = request.app.state.metrics_cache
    encoded = jobs_page_json(session, cache, owner, filters, after, limit)
    return _cached(encoded, if_none_match)


def _cached(encoded: Encoded, if_none_match: str | None) -> Response:
    """The encoded body with its ETag, or 304 when the client holds it already."""
    # no-cache: a client may keep the body but must ask again (cheaply, with the ETag).
    headers = {"ETag": encoded.etag, "Cache-Control": "private, no-cache"}
    if encoded.matches(if_none_match):
        return Response(status_code=304, headers=headers)
    return Response(encoded.body, media_type="application/json", headers=headers)


@router.get("/{job_id}", response_model=JobOut, summary="Get a job")
def get_one(job: JobDep) -> JobOut:
    return job_out(job)


@router.post("/{job_id}/cancel", response_model=JobOut, summary="Cancel a job")
def cancel(job: JobDep, session: SessionDep) -> JobOut:
    """A queued job is cancelled at once; a running one stops after its current step, keeping
    its last checkpoint. 409 for a finished job."""
    return job_out(cancel_job(session, job))


@router.post("/{job_id}/pause", response_model=JobOut, summary="Pause a job")
def pause(job: JobDep, session: SessionDep) -> JobOut:
    """A running job stops after its current step, saving a checkpoint, and shows `paused`
    (a queued one pauses at once); resume continues it. 409 for any other status."""
    return job_out(pause_job(session, job))


@router.post("/{job_id}/resume", response_model=JobOut, summary="Resume a job")
def resume(job: JobDep, session: SessionDep, queue: QueueDep) -> JobOut:
    """Queue a paused, failed or cancelled job again; it continues from its last checkpoint."""
    return job_out(resume_job(session, queue, job))


@router.get("/{job_id}/events", response_model=Page[EventOut], summary="A job's events")
def events(
    job: JobDep,
    session: SessionDep,
    after: Annotated[
        int | None, Query(ge=0, le=DB_INT_MAX, description="the last event id seen")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Page[EventOut]:
    rows = outputs.list_events(session, job.id, after, limit + 1)
    data = [EventOut.model_validate(r) for r in rows[:limit]]
    return Page.of(data, len(rows) > limit)


@router.get(
    "/{job_id}/events/stream",
    summary="Follow a job's events (server-sent events)",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "`id`, `event` (the kind) and `data` (an event as JSON) "
            "per event; `event: end` once the job has finished",
        }
    },
)
def stream(
    job: JobDep,
    request: Request,
    after: Annotated[int | None, Query(ge=0, le=DB_INT_MAX)] = None,
    last_event_id: Annotated[
        str | None, Header(description="the last event id a reconnecting client saw")
    ] = None,
) -> StreamingResponse:
    """Resumable: a reconnecting client's Last-Event-ID header (or `after`) skips what it saw."""
    start = event_id_header(last_event_id) if last_event_id else None
    start = after if start is None else start
    return StreamingResponse(
        event_stream(request, request.app.state.feeds, job.id, start),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get(
    "/{job_id}/metrics",
    response_model=MetricsOut,
    summary="A job's metric series",
    responses={304: {"description": "unchanged since the ETag sent in If-None-Match"}},
)
def metrics(
    job: JobDep,
    session: SessionDep,
    request: Request,
    names: Annotated[str | None, Query(description="comma-separated; default: all")] = None,
    max_points: Annotated[int, Query(ge=2, le=100_000)] = 1000,
    min_step: Annotated[
        int | None, Query(ge=0, le=DB_INT_MAX, description="only steps >= this")
    ] = None,
    if_none_match: Annotated[
        str | None, Header(description="the ETag of an earlier answer: 304 if unchanged")
    ] = None,
) -> Response:
    """Each series downsampled to `max_points`, keeping the min and max of every bucket.
    Answers carry an ETag; a poll that sends it back gets 304 until a new point arrives."""
    wanted = [n for n in (names or "").split(",") if n] or None
    state = request.app.state
    encoded = metrics_json(
        session, state.metrics_cache, job, wanted, max_points, min_step, state.series_cache
    )
    return _cached(encoded, if_none_match)


@router.get("/{job_id}/samples", response_model=SamplesOut, summary="A step's samples")
def samples(
    job: JobDep,
    session: SessionDep,
    step: Annotated[
        int | None,
        Query(ge=0, le=DB_INT_MAX, description="default: the latest step with samples"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> SamplesOut:
    rows = outputs.list_samples(session, job.id, step, limit)
    return SamplesOut(
        data=[SampleOut.model_validate(r) for r in rows],
        steps=outputs.sample_steps(session, job.id),
    )


@router.get(
    "/{job_id}/checkpoints", response_model=Page[CheckpointOut], summary="A job's checkpoints"
)
def checkpoints(
    job: JobDep, request: Request, session: SessionDep, settings: SettingsDep
) -> Page[CheckpointOut]:
    rows = outputs.list_checkpoints(session, job.id)
    data = [checkpoint_out(c, settings.secret_key, str(request.base_url)) for c in rows]
    return Page.of(data, False)
