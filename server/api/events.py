"""Server-sent events of a job (the wire format of GET /v1/jobs/{id}/events/stream): new events
as they are written, then `end` once the job has finished."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

from starlette.requests import Request

from server.api.feeds import Feeds, read_events
from server.errors import InvalidRequestError
from server.schemas.common import DB_INT_MAX
from server.schemas.jobs import EventOut

KEEPALIVE_S = 15.0
CHECK_S = 2.0
"""How often a waiting stream checks that its client is still there."""


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
    request: Request, feeds: Feeds, job_id: str, after: int | None
) -> AsyncIterator[str]:
    """The job's events after `after`, from the job's feed (server.api.feeds: one poller per
    job, however many follow it); a stream behind the feed's window reads the database, a
    page per short session, until it has caught up. A comment line every KEEPALIVE_S keeps
    proxies from closing an idle stream."""
    feed = await feeds.join(job_id)
    try:
        idle = 0.0
        while True:
            changed = feed.changed  # taken before reading, so no wake-up falls in between
            if after is None or after < feed.floor:
                events, finished = await feeds.read(read_events, job_id, after)
                finished = finished and not events
            else:
                events, finished = feed.after(after), feed.finished
            for event in events:
                yield format_event(event)
                after = event.id
            if finished and not events:
                yield f"event: end\ndata: {json.dumps({'job_id': job_id})}\n\n"
                return
            if events:
                idle = 0.0
                continue
            after = 0 if after is None else after  # no events yet: the feed holds the next
            if await request.is_disconnected():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), CHECK_S)
            idle = 0.0 if changed.is_set() else idle + CHECK_S
            if idle >= KEEPALIVE_S:
                idle = 0.0
                yield ": keep-alive\n\n"
    finally:
        feeds.leave(feed)
