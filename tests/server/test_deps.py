"""Ownership as dependencies: a route names the resource it needs (JobDep, DatasetDep, ...) and
gets it, or the request ends with 404 before the handler runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute

from server.api.deps import (
    visible_comparison,
    visible_dataset,
    visible_evaluation,
    visible_job,
)
from server.api.routes import checkpoints, comparisons, datasets, evaluations, health, jobs
from server.config import Settings
from server.db.models import Owner
from server.db.owners import owner_for_key
from server.db.session import new_session
from server.errors import NotFoundError
from tests.server.conftest import PAIRS, Api, dpo_spec

# Each path parameter that names a resource, and the dependency that must resolve it.
RESOURCES: dict[str, Callable[..., Any]] = {
    "job_id": visible_job,
    "evaluation_id": visible_evaluation,
    "dataset_id": visible_dataset,
    "comparison_id": visible_comparison,
}


def _calls(dependant: Any) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def test_every_route_with_a_resource_id_resolves_it_through_its_dependency():
    modules = (checkpoints, comparisons, datasets, evaluations, health, jobs)
    routes = [r for m in modules for r in m.router.routes if isinstance(r, APIRoute)]
    checked = 0
    for route in routes:
        for param, dependency in RESOURCES.items():
            if "{" + param + "}" in route.path:
                assert dependency in set(_calls(route.dependant)), route.path
                checked += 1
    assert checked >= 14  # every /jobs/{job_id}/..., datasets, comparisons, evaluations


def owners(settings: Settings, keys: dict[str, str]) -> Iterator[tuple[Any, dict[str, Owner]]]:
    with new_session(settings.database_url) as session:
        yield session, {name: owner_for_key(session, key) for name, key in keys.items()}


@pytest.fixture
def session_and_owners(settings: Settings, keys: dict[str, str]):
    yield from owners(settings, keys)


def test_a_job_is_given_to_its_owner_and_admins_and_not_found_for_others(
    alice: Api, session_and_owners
):
    job_id = alice.job(dpo_spec(alice.dataset(PAIRS)))["id"]
    session, who = session_and_owners
    assert visible_job(job_id, session, who["alice"]).id == job_id
    assert visible_job(job_id, session, who["admin"]).id == job_id
    with pytest.raises(NotFoundError, match=f"no job '{job_id}'"):
        visible_job(job_id, session, who["bob"])
    # a training job is not an evaluation, whoever asks
    with pytest.raises(NotFoundError, match="no evaluation"):
        visible_evaluation(job_id, session, who["alice"])


def test_a_dataset_and_a_comparison_are_not_found_for_another_owner(alice: Api, session_and_owners):
    dataset = alice.dataset(PAIRS)
    request = {"name": "c", "base": dpo_spec(dataset), "variants": [{"label": "dpo"}]}
    comparison = alice.post("/v1/comparisons", json=request).json()["id"]
    session, who = session_and_owners
    assert visible_dataset(dataset, session, who["alice"]).id == dataset
    assert visible_comparison(comparison, session, who["alice"]).id == comparison
    with pytest.raises(NotFoundError):
        visible_dataset(dataset, session, who["bob"])
    with pytest.raises(NotFoundError):
        visible_comparison(comparison, session, who["bob"])
