"""One poller per followed job, shared by every event stream of it in this API process.

Without it each open stream polled the database on its own: 50 dashboards following two
training jobs were 100 queries a second, as many as all their other requests together. A feed
polls its job (the events after the last it saw, and the status) while anyone follows it, keeps
the recent events, and wakes its streams when new ones arrive. A stream that starts, or falls,
behind the feed's window reads the database itself until it has caught up, so a resumed stream
(`Last-Event-ID`) still gets every event. The feed holds no connection between polls (a short
session each), and each process has its own: any replica can serve any client.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio
from starlette.concurrency import run_in_threadpool

from server.db.jobs import job_status
from server.db.models import FINISHED_STATUSES
from server.db.outputs import last_event_id, list_events
from server.db.session import new_session
from server.schemas.jobs import EventOut

log = logging.getLogger("gro.api")

POLL_S = 0.5
"""How soon a feed polls again after it found events."""
MAX_POLL_S = 2.0
"""A quiet job is polled less often, up to this far apart."""
KEPT = 1000
"""Events a feed keeps; a stream further behind reads the database until it catches up."""
PAGE = 500


def read_events(url: str, job_id: str, after: int | None) -> tuple[list[EventOut], bool]:
    """Events after `after` (a page), and whether the job has finished, in one short session."""
    with new_session(url) as session:
        status = job_status(session, job_id)
        rows = [EventOut.model_validate(e) for e in list_events(session, job_id, after, PAGE)]
    return rows, status in FINISHED_STATUSES or status is None


def _last_id(url: str, job_id: str) -> int:
    with new_session(url) as session:
        return last_event_id(session, job_id)


@dataclass
class Feed:
    """The recent events of one job: every event with an id above `floor` that the database
    held at the last poll, in order."""

    job_id: str
    floor: int = 0
    events: list[EventOut] = field(default_factory=list)
    finished: bool = False
    followers: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None

    @property
    def last(self) -> int:
        return self.events[-1].id if self.events else self.floor

    def after(self, event_id: int) -> list[EventOut]:
        """The kept events after `event_id` (which must be at or above the floor)."""
        return [e for e in self.events if e.id > event_id]

    def add(self, events: list[EventOut], finished: bool) -> None:
        self.events += events
        if len(self.events) > KEPT:
            self.floor = self.events[-KEPT - 1].id
            del self.events[:-KEPT]
        self.finished = finished
        if events or finished:
            self.changed.set()  # wakes every stream waiting on this event...
            self.changed = asyncio.Event()  # ...and the next wait is on a fresh one


class Feeds:
    """The feeds of one API process, one per job being followed; `slots` are the app's
    database slots (server.api.deps.get_session), which every poll waits for."""

    def __init__(self, url: str, slots: anyio.Semaphore) -> None:
        self.url, self.slots = url, slots
        self._feeds: dict[str, Feed] = {}

    async def read(self, fn: Callable, *args: object) -> object:
        async with self.slots:
            return await run_in_threadpool(fn, self.url, *args)

    async def join(self, job_id: str) -> Feed:
        """The job's feed, started for its first follower; call `leave` when done."""
        feed = self._feeds.get(job_id)
        # A finished job's feed has stopped polling; a job resumed since needs a new one.
        if feed is None or (feed.task is not None and feed.task.done()):
            feed = self._feeds[job_id] = Feed(job_id)
            feed.task = asyncio.create_task(self._follow(feed), name=f"feed {job_id}")
        feed.followers += 1
        await feed.ready.wait()
        return feed

    def leave(self, feed: Feed) -> None:
        feed.followers -= 1
        if feed.followers == 0 and self._feeds.get(feed.job_id) is feed:
            del self._feeds[feed.job_id]
            if feed.task is not None:
                feed.task.cancel()

    async def _follow(self, feed: Feed) -> None:
        wait = POLL_S
        while True:
            try:
                if not feed.ready.is_set():
                    feed.floor = await self.read(_last_id, feed.job_id)
                    feed.ready.set()
                events, finished = await self.read(read_events, feed.job_id, feed.last)
            except Exception:  # a database hiccup: the streams wait, the feed tries again
                log.warning("polling the events of %s failed", feed.job_id, exc_info=True)
                events, finished = [], False
            feed.add(events, finished and not events)
            if feed.finished:
                return
            wait = POLL_S if events else min(wait * 1.5, MAX_POLL_S)
            if len(events) < PAGE:  # a full page: more are waiting, read on at once
                await asyncio.sleep(wait)
