"""Dependencies routes declare with `Annotated`: the settings, a database session, the caller
(from its Bearer key), the job queue, and each resource the caller may see.

A route that takes `job: JobDep` gets the job of its `{job_id}` path parameter, or the request
ends with 404 before the handler runs: another owner's job and a missing one look the same.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from server.config import Settings
from server.db import jobs as db_jobs
from server.db.comparisons import get_comparison
from server.db.datasets import get_dataset
from server.db.models import Checkpoint, Comparison, Dataset, Job, Owner
from server.db.outputs import checkpoint_by_id, get_checkpoint
from server.db.owners import owner_for_key
from server.db.session import new_session
from server.errors import ForbiddenError, NotFoundError, UnauthorizedError
from server.queue import JobQueue
from server.storage import signature_valid

_bearer = HTTPBearer(auto_error=False, description="an API key: `gro keys create --owner NAME`")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


# Dependencies that only read are `async def`: FastAPI runs a plain `def` one in its
# threadpool, one thread hand-off (and a turn for the GIL) each, on every request.
async def app_settings(request: Request) -> Settings:
    """The settings the app was created with (tests give each app its own)."""
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(app_settings)]


async def get_session(request: Request, settings: SettingsDep) -> AsyncIterator[Session]:
    """A session for the request, taken only once one of the app's database slots is free.

    Sync dependencies and routes run in a threadpool, and a request holds its connection
    between those threads' turns: with more requests than connections, every thread could
    sit waiting for a connection held by a request that waits for a thread (deadlock until
    the pool's timeout). Waiting for a slot here, on the event loop, instead of in a thread,
    keeps the connections in use at or under the pool's capacity.
    """
    async with request.app.state.db_slots:
        session = new_session(settings.database_url)
        try:
            yield session
        finally:
            await run_in_threadpool(session.close)


# Closed when the route function returns, before the response is sent: a streamed response
# (server-sent events, a tar, a JSONL export) holds no pooled connection while it lasts, and
# opens a short session of its own whenever it reads.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


async def get_queue(request: Request) -> JobQueue:
    return request.app.state.queue


QueueDep = Annotated[JobQueue, Depends(get_queue)]


def current_owner(session: SessionDep, credentials: Credentials) -> Owner:
    if credentials is None:
        raise UnauthorizedError(
            "unauthorized", "missing API key: send 'Authorization: Bearer <key>'"
        )
    owner = owner_for_key(session, credentials.credentials)
    if owner is None:
        raise UnauthorizedError("unauthorized", "unknown or revoked API key")
    return owner


OwnerDep = Annotated[Owner, Depends(current_owner)]


async def admin_owner(owner: OwnerDep) -> Owner:
    if not owner.is_admin:
        raise ForbiddenError("forbidden", "this endpoint needs an admin key")
    return owner


AdminDep = Annotated[Owner, Depends(admin_owner)]


# --- resources the caller may see ------------------------------------------------------------


def visible_job(job_id: str, session: SessionDep, owner: OwnerDep) -> Job:
    job = db_jobs.get_job(session, owner, job_id)
    if job is None:
        raise NotFoundError("job", job_id)
    return job


JobDep = Annotated[Job, Depends(visible_job)]


def visible_evaluation(evaluation_id: str, session: SessionDep, owner: OwnerDep) -> Job:
    job = db_jobs.get_job(session, owner, evaluation_id, kind="evaluation")
    if job is None:
        raise NotFoundError("evaluation", evaluation_id)
    return job


EvaluationDep = Annotated[Job, Depends(visible_evaluation)]


def visible_generation(generation_id: str, session: SessionDep, owner: OwnerDep) -> Job:
    job = db_jobs.get_job(session, owner, generation_id, kind="generation")
    if job is None:
        raise NotFoundError("generation", generation_id)
    return job


GenerationDep = Annotated[Job, Depends(visible_generation)]


def visible_dataset(dataset_id: str, session: SessionDep, owner: OwnerDep) -> Dataset:
    dataset = get_dataset(session, owner, dataset_id)
    if dataset is None:
        raise NotFoundError("dataset", dataset_id)
    return dataset


DatasetDep = Annotated[Dataset, Depends(visible_dataset)]


def visible_comparison(comparison_id: str, session: SessionDep, owner: OwnerDep) -> Comparison:
    comparison = get_comparison(session, owner, comparison_id)
    if comparison is None:
        raise NotFoundError("comparison", comparison_id)
    return comparison


ComparisonDep = Annotated[Comparison, Depends(visible_comparison)]


def downloadable_checkpoint(
    checkpoint_id: str,
    session: SessionDep,
    settings: SettingsDep,
    credentials: Credentials,
    expires: int | None = None,
    signature: str | None = None,
) -> Checkpoint:
    """With an API key, a checkpoint of a job the caller may see; without one, any checkpoint
    whose signed link (`expires`, `signature`) is valid: browser links cannot send a key."""
    if credentials is not None:
        checkpoint = get_checkpoint(session, current_owner(session, credentials), checkpoint_id)
    elif signature_valid(
        settings.secret_key, checkpoint_id, expires, signature, settings.signed_link_max_s
    ):
        checkpoint = checkpoint_by_id(session, checkpoint_id)
    else:
        raise UnauthorizedError("unauthorized", "send an API key or use a signed, unexpired link")
    if checkpoint is None:
        raise NotFoundError("checkpoint", checkpoint_id)
    return checkpoint


CheckpointDep = Annotated[Checkpoint, Depends(downloadable_checkpoint)]
