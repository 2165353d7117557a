"""/v1/comparisons: one base spec × variants × seeds, and its summary over seeds."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from gro_core.evaluation.frontier import KL_METRIC, REWARD_METRIC
from server.api.deps import ComparisonDep, OwnerDep, QueueDep, SessionDep, SettingsDep
from server.db.comparisons import list_comparisons
from server.schemas.common import ERRORS, Page
from server.schemas.comparisons import ComparisonIn, ComparisonOut, FrontierOut
from server.services.comparisons import show_comparison, start_comparison
from server.services.frontiers import MAX_AT_KL, comparison_frontier, parse_at_kl

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


MetricName = Annotated[str, Query(min_length=1, max_length=128)]


@router.get(
    "/{comparison_id}/frontier",
    response_model=FrontierOut,
    summary="Reward at matched KL to the reference",
)
def get_frontier(
    comparison: ComparisonDep,
    session: SessionDep,
    at_kl: Annotated[
        str | None,
        Query(
            description=f"comma-separated KL values, each finite and >= 0, at most {MAX_AT_KL}; "
            "default: four values up to the largest KL every run reached",
            examples=["0.1,0.5"],
        ),
    ] = None,
    baseline: Annotated[
        str | None, Query(description="the variant differences are against; default: the first")
    ] = None,
    kl_metric: MetricName = KL_METRIC,
    reward_metric: MetricName = REWARD_METRIC,
) -> FrontierOut:
    """Each succeeded run's (KL, reward) evaluations, read at each KL value where the run
    first crosses it, by linear interpolation between the evaluations around it. Never
    extrapolated: a run whose KL never reaches a value is reported as not reached, with its
    largest KL. Per variant: the mean over the seeds that reached it with a 95% bootstrap CI,
    and the paired (same seed) difference against the baseline where both reached it."""
    return comparison_frontier(
        session, comparison, parse_at_kl(at_kl), baseline, kl_metric, reward_metric
    )
