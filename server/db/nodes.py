"""The machines of a job spanning several (job_nodes): the attempt's owner records node 0 and
the rendezvous it hosts; each worker that joins takes the next free node number."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.db.jobs import attempt_running
from server.db.models import JobNode


def host_node(session: Session, job_id: str, attempt: int, worker: str, endpoint: str) -> None:
    """Record node 0 of `attempt`: `worker`, hosting the rendezvous at `endpoint`."""
    session.add(JobNode(job_id=job_id, attempt=attempt, node=0, worker=worker, endpoint=endpoint))
    session.flush()


def join_node(
    session: Session, job_id: str, attempt: int, nnodes: int, worker: str
) -> tuple[int, str] | None:
    """Take the next free node number of `attempt` for `worker`: (node, rendezvous endpoint),
    or None when the attempt no longer runs or has all its machines."""
    if not attempt_running(session, job_id, attempt):
        return None
    endpoint = session.scalar(
        select(JobNode.endpoint).where(
            JobNode.job_id == job_id, JobNode.attempt == attempt, JobNode.node == 0
        )
    )
    if endpoint is None:
        return None
    for node in range(1, nnodes):
        try:
            with session.begin_nested():  # a node another joiner took: try the next
                session.add(
                    JobNode(
                        job_id=job_id, attempt=attempt, node=node, worker=worker, endpoint=endpoint
                    )
                )
        except IntegrityError:
            continue
        return node, endpoint
    return None


def nodes_joined(session: Session, job_id: str, attempt: int) -> int:
    """Machines recorded for `attempt`, node 0 included."""
    query = select(func.count()).where(JobNode.job_id == job_id, JobNode.attempt == attempt)
    return int(session.scalar(query) or 0)
