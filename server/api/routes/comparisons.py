"""/v1/comparisons: one base spec × variants × seeds, and its summary over seeds."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from server.api.deps import OwnerDep, QueueDep, SessionDep, SettingsDep
from server.api.errors import not_found
from server.db.models import Comparison
from server.db.owners import visible
from server.db.pages import page
from server.schemas.common import ERRORS, Page
from server.schemas.comparisons import ComparisonIn, ComparisonOut
from server.services.comparisons import comparison_jobs, comparison_out, create_comparison
from server.services.jobs import enqueue

router = APIRouter(prefix="/v1/comparisons", tags=["comparisons"], responses=ERRORS)


@router.post("", status_code=201, response_model=ComparisonOut, summary="Start a comparison")
def create(
    request: ComparisonIn,
    session: SessionDep,
    owner: OwnerDep,
    settings: SettingsDep,
    queue: QueueDep,
) -> ComparisonOut:
    """One job per variant × seed (`train.seed` set to the seed). Every variant is validated
    first: one invalid variant refuses the request and no job is created."""
    comparison, jobs = create_comparison(session, owner, request, settings)
    session.commit()
    for job in jobs:
        enqueue(session, queue, job)
    return comparison_out(comparison, jobs)


@router.get("", response_model=Page[ComparisonOut], summary="List comparisons, newest first")
def list_all(
    session: SessionDep,
    owner: OwnerDep,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Page[ComparisonOut]:
    query = visible(select(Comparison), Comparison, owner)
    rows, more = page(session, query, Comparison.id, after, limit)
    return Page.of([comparison_out(c, comparison_jobs(session, c.id)) for c in rows], more)


@router.get("/{comparison_id}", response_model=ComparisonOut, summary="A comparison's summary")
def get_one(comparison_id: str, session: SessionDep, owner: OwnerDep) -> ComparisonOut:
    """Its jobs, and per variant and metric the mean over seeds with a 95% bootstrap CI and the
    paired difference against the first variant."""
    query = visible(select(Comparison), Comparison, owner).where(Comparison.id == comparison_id)
    comparison = session.scalar(query)
    if comparison is None:
        raise not_found("comparison", comparison_id)
    return comparison_out(comparison, comparison_jobs(session, comparison.id))
