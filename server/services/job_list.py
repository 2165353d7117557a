"""The job list for the API, encoded once per change of the owner's jobs.

Dashboards poll the list every few seconds; between two polls usually nothing the caller may
see has changed. An encoded page is kept per (owner, query) under `list_version`: the count of
the owner's jobs and their newest id in the key (a new job or, were jobs ever deleted, a
removed one makes another key) and the sum of their row versions as the version (any update of
any of them adds one). A poll that finds nothing changed costs that one aggregate read; one
that sends the ETag back gets 304 without a body."""

from __future__ import annotations

from sqlalchemy.orm import Session

from server.db import jobs as db_jobs
from server.db.models import Owner
from server.schemas.common import Page
from server.services.jobs import job_out
from server.services.response_cache import Encoded, ResponseCache

FILTERS = ("status", "method", "name", "comparison_id")


def jobs_page_json(
    session: Session,
    cache: ResponseCache,
    owner: Owner,
    filters: dict[str, str | None],
    after: str | None,
    limit: int,
) -> Encoded:
    """The encoded Page[JobOut] of `owner`'s training jobs, from the cache while none of them
    changed. The version is read before the page: a change between the two reads leaves a
    newer page under the older version, which the next poll (seeing the new version) rebuilds."""
    count, newest, versions = db_jobs.list_version(session, owner)
    # An admin sees every owner's jobs: one entry for all admins.
    scope = "admin" if owner.is_admin else owner.id
    query = tuple(filters.get(name) for name in FILTERS)
    key = ("jobs", scope, count, newest, query, after, limit)

    def build() -> bytes:
        rows, more = db_jobs.list_jobs(session, owner, after=after, limit=limit, **filters)
        return Page.of([job_out(j) for j in rows], more).model_dump_json().encode()

    return cache.get(key, versions, build)
