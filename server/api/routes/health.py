"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from server.api.deps import AdminDep, QueueDep, SessionDep
from server.db.jobs import count_by_status
from server.db.models import JOB_STATUSES
from server.db.session import answers
from server.schemas.common import ERRORS

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The database and the broker answer",
    responses={503: {"description": "a dependency is down; the body says which"}},
)
def readyz(session: SessionDep, queue: QueueDep) -> JSONResponse:
    checks = {"database": answers(session), "broker": queue.ping()}
    ready = all(checks.values())
    body = {"status": "ready" if ready else "unavailable", "checks": checks}
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics (admin key)",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "text exposition format"},
        **{code: ERRORS[code] for code in (400, 401, 403)},
    },
)
def prometheus(request: Request, session: SessionDep, queue: QueueDep, _: AdminDep) -> Response:
    """Jobs by status, queue depth, and request latency by route."""
    telemetry = request.app.state.telemetry
    counts = count_by_status(session)
    for status in JOB_STATUSES:
        telemetry.jobs.labels(status=status).set(counts.get(status, 0))
    try:
        for queue_name, depth in queue.depths().items():
            telemetry.queue_depth.labels(queue=queue_name).set(depth)
    except Exception:  # a down broker must not hide the other metrics
        telemetry.broker_up.set(0)
    else:
        telemetry.broker_up.set(1)
    return Response(telemetry.render(), media_type=telemetry.content_type)
