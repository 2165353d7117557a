"""Polling the job list: answers come from a per-process cache until one of the owner's jobs
changes (a new job, a status, progress written by a worker), carry an ETag that If-None-Match
turns into 304, and never cross owners."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import event

from server.config import Settings
from server.db import jobs as db_jobs
from server.db.session import get_engine, session_scope
from tests.server.conftest import PAIRS, Api, dpo_spec


@pytest.fixture
def job_id(alice: Api) -> str:
    return alice.job(dpo_spec(alice.dataset(PAIRS)))["id"]


@pytest.fixture
def page_reads(settings: Settings) -> Iterator[list[str]]:
    """The SQL statements that read a page of jobs (ordered rows, not the aggregate)."""
    seen: list[str] = []

    def record(conn, cursor, statement: str, *args) -> None:
        if re.search(r"FROM jobs\b.*ORDER BY jobs\.id DESC", statement, re.S):
            seen.append(statement)

    engine = get_engine(settings.database_url)
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def etag_poll(api: Api, etag: str, path: str = "/v1/jobs") -> int:
    return api.get(path, headers={"If-None-Match": etag}).status_code


def test_an_unchanged_poll_reads_no_page(alice: Api, job_id: str, page_reads: list):
    first = alice.get("/v1/jobs")
    assert first.status_code == 200 and page_reads
    assert [j["id"] for j in first.json()["data"]] == [job_id]
    page_reads.clear()
    assert alice.get("/v1/jobs").content == first.content
    assert page_reads == []
    # Another query is its own entry.
    assert alice.get("/v1/jobs?status=succeeded").json()["data"] == [] and page_reads


def test_a_matching_etag_gets_304_until_a_job_changes(alice: Api, settings: Settings, job_id: str):
    first = alice.get("/v1/jobs")
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "private, no-cache"
    assert etag_poll(alice, etag) == 304
    assert etag_poll(alice, f'W/{etag}, "other"') == 304

    # A worker claims the job and writes progress: the listed status and step change.
    with session_scope(settings.database_url) as session:
        attempt = db_jobs.claim(session, job_id, "w1")
    changed = alice.get("/v1/jobs", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.json()["data"][0]["status"] == "running"
    etag = changed.headers["ETag"]
    with session_scope(settings.database_url) as session:
        assert db_jobs.beat(session, job_id, attempt, step=3)
    progressed = alice.get("/v1/jobs", headers={"If-None-Match": etag})
    assert progressed.status_code == 200
    assert progressed.json()["data"][0]["progress"]["step"] == 3
    etag = progressed.headers["ETag"]

    # A heartbeat alone changes nothing listed: the page is rebuilt, its tag is the same.
    with session_scope(settings.database_url) as session:
        assert db_jobs.beat(session, job_id, attempt)
    assert etag_poll(alice, etag) == 304

    # Cancelling through the API, and a new job, each change the list.
    assert alice.post(f"/v1/jobs/{job_id}/cancel").status_code == 200
    cancelled = alice.get("/v1/jobs", headers={"If-None-Match": etag})
    assert cancelled.status_code == 200
    assert cancelled.json()["data"][0]["cancel_requested"] is True
    etag = cancelled.headers["ETag"]
    newer = alice.job(dpo_spec(alice.dataset(PAIRS)))["id"]
    listed = alice.get("/v1/jobs", headers={"If-None-Match": etag})
    assert listed.status_code == 200
    assert [j["id"] for j in listed.json()["data"]] == [newer, job_id]


def test_the_cache_never_crosses_owners(alice: Api, bob: Api, admin: Api, job_id: str):
    assert [j["id"] for j in alice.get("/v1/jobs").json()["data"]] == [job_id]
    assert bob.get("/v1/jobs").json()["data"] == []
    assert [j["id"] for j in admin.get("/v1/jobs").json()["data"]] == [job_id]
    bobs = bob.job(dpo_spec(bob.dataset(PAIRS)))["id"]
    assert [j["id"] for j in bob.get("/v1/jobs").json()["data"]] == [bobs]
    assert [j["id"] for j in alice.get("/v1/jobs").json()["data"]] == [job_id]
    assert [j["id"] for j in admin.get("/v1/jobs").json()["data"]] == [bobs, job_id]
