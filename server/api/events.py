"""Server-sent events of a job (the wire format of GET /v1/jobs/{id}/events/stream): new events
as they are written, then `end` once the job has finished."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from server.db.jobs import job_status
from server.db.models import FINISHED_STATUSES
from server.db.outputs import list_events
from server.db.session import new_session
from server.errors import InvalidRequestError
from server.schemas.common import DB_INT_MAX
from server.schemas.jobs import EventOut

POLL_S = 0.5
MAX_POLL_S = 2.0
KEEPALIVE_S = 15.0


def _poll(url: str, job_id: str, after: int | None) -> tuple[list[EventOut], bool]:
    """Events after `after`, and whether the job has finished (read in one session)."""
    with new_session(url) as session:
        status = job_status(session, job_id)
        rows = [EventOut.model_validate(e) for e in list_events(session, job_id, after, 500)]
    return rows, status in FINISHED_STATUSES or status is None


def event_id_header(value: str) -> int | None:
    """The id of a Last-Event-ID header; None for one that is not a decimal id (ignored, as
    browsers may send anything), 422 for an id no database holds (checked before the stream
    starts: a stream cannot answer an error once its 200 is sent)."""
    if not (value.isascii() and value.isdigit()):
        return None
    digits = value.lstrip("0") or "0"
    if len(digits) > len(str(DB_INT_MAX)) or int(digits) > DB_INT_MAX:
        raise InvalidRequestError(
            "out_of_range",
            f"Last-Event-ID: event ids are at most {DB_INT_MAX}",
            field="Last-Event-ID",
        )
    return int(digits)


def format_event(event: EventOut) -> str:
    return f"id: {event.id}\nevent: {event.kind}\ndata: {event.model_dump_json()}\n\n"


async def event_stream(
    request: Request, url: str, job_id: str, after: int | None
) -> AsyncIterator[str]:
    """Polls the database (the API holds no per-job state, so any replica can serve a client),
    each poll in a session of its own that is closed before the stream waits again: an open
    stream holds no connection. A quiet job is polled less often (up to every MAX_POLL_S), so
    hundreds of idle streams cost little; a comment line every KEEPALIVE_S keeps proxies from
    closing an idle stream."""
    idle, wait = 0.0, POLL_S
    while True:
        async with request.app.state.db_slots:  # see server.api.deps.get_session
            events, finished = await run_in_threadpool(_poll, url, job_id, after)
        for event in events:
            yield format_event(event)
            after = event.id
        if finished and not events:
            yield f"event: end\ndata: {json.dumps({'job_id': job_id})}\n\n"
            return
        if await request.is_disconnected():
            return
        idle = 0.0 if events else idle + wait
        wait = POLL_S if events else min(wait * 1.5, MAX_POLL_S)
        if idle >= KEEPALIVE_S:
            idle = 0.0
            yield ": keep-alive\n\n"
        await asyncio.sleep(wait)
