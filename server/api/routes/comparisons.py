"""/v1/comparisons: one base spec × variants × seeds, and its summary over seeds."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from server.api.deps import ComparisonDep, OwnerDep, QueueDep, SessionDep, SettingsDep
from server.db.comparisons import list_comparisons
from server.schemas.common import ERRORS, Page
from server.schemas.comparisons import ComparisonIn, ComparisonOut
from server.services.comparisons import show_comparison, start_comparison

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
    return start_comparison(session, queue, owner, request, settings)


@router.get("", response_model=Page[ComparisonOut], summary="List comparisons, newest first")
def list_all(
    session: SessionDep,
    owner: OwnerDep,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Page[ComparisonOut]:
    rows, more = list_comparisons(session, owner, after, limit)
    return Page.of([show_comparison(session, c) for c in rows], more)


@router.get("/{comparison_id}", response_model=ComparisonOut, summary="A comparison's summary")
def get_one(comparison: ComparisonDep, session: SessionDep) -> ComparisonOut:
    """Its jobs, and per variant and metric the mean over seeds with a 95% bootstrap CI and the
    paired difference against the first variant."""
    return show_comparison(session, comparison)
