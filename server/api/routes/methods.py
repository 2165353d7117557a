"""/v1/methods and /v1/tasks: the method registry and the built-in tasks, for forms and clients
that build job specs without importing gro_core."""

from __future__ import annotations

from fastapi import APIRouter

from gro_core.methods import describe_methods
from gro_core.tasks import TASKS
from server.api.deps import OwnerDep
from server.schemas.common import ERRORS
from server.schemas.methods import MethodList, TaskList

router = APIRouter(tags=["methods"], responses={401: ERRORS[401]})


@router.get("/v1/methods", response_model=MethodList, summary="The training methods")
def list_methods(_: OwnerDep) -> dict[str, object]:
    """Every method a job may name, in registry order: the data kinds it trains on, online or
    offline, its documented arguments (`method_args`) with types and defaults, and its preset."""
    return {"object": "list", "data": describe_methods()}


@router.get("/v1/tasks", response_model=TaskList, summary="The built-in tasks")
def list_tasks(_: OwnerDep) -> dict[str, object]:
    """Every task a job may name as `data.task`, with the dataset kind of its rows."""
    tasks = [
        {
            "name": f"builtin:{t.name}",
            "kind": t.kind,
            "description": t.description,
            "family": t.family,
            "default_reward": t.default_reward,
            "rewards": list(t.rewards),
        }
        for t in TASKS.values()
    ]
    return {"object": "list", "data": tasks}
