"""Jobs spanning machines (resources.nnodes > 1): one worker per machine, met in the database.

    first worker   claims the job (as any job), picks a port, records node 0 with the
                   rendezvous endpoint `GRO_NODE_ADDRESS:port` in job_nodes, sends one
                   `gro.join` per other machine to the job's queue, and starts its elastic
                   agent hosting the c10d rendezvous
    each joiner    takes the next node number of that attempt (a unique key: no two share
                   one), reads the endpoint and starts its agent, which joins the rendezvous
    torchrun       connects the agents (c10d), assigns global ranks and starts the training;
                   a machine that never arrives fails the job `nodes_missing` after
                   GRO_NODE_JOIN_TIMEOUT_S

The first worker owns the job: heartbeat, cancel and the job row's end. A joiner only watches
that the attempt still runs and ends its ranks when it does not.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path

from server.config import Settings
from server.db import nodes as db_nodes
from server.db.models import Job
from server.db.session import session_scope
from server.queue import CeleryQueue, JobQueue
from worker.execute import resume_point
from worker.launch import Node, Resources, free_port
from worker.refs import BadReferenceError, NotReadyError, resolve_spec
from worker.supervise import supervise

log = logging.getLogger("gro.worker")

JOINED, NOT_NEEDED = "joined", "not_needed"


def host(
    settings: Settings,
    job_id: str,
    attempt: int,
    resources: Resources,
    worker: str,
    queue: JobQueue | None = None,
) -> Node:
    """Record this worker as node 0 of `attempt` and ask for the other machines."""
    address = settings.node_address or socket.gethostname()
    endpoint = f"{address}:{free_port()}"
    with session_scope(settings.database_url) as session:
        db_nodes.host_node(session, job_id, attempt, worker, endpoint)
    queue = queue or CeleryQueue(settings.broker_url)
    for _ in range(resources.nnodes - 1):
        try:
            queue.enqueue_join(job_id, attempt, resources.nproc_per_node)
        except Exception:  # the rendezvous times out and says which machines are missing
            log.exception("could not ask for a machine for job %s", job_id)
    return Node(resources.nnodes, endpoint, True, settings.node_join_timeout_s)


def run_join_job(settings: Settings, job_id: str, attempt: int, worker: str) -> str:
    """Be one more machine of attempt `attempt`: its ranks on this machine, to their end."""
    with session_scope(settings.database_url) as session:
        job = session.get(Job, job_id)
        if job is None:
            return NOT_NEEDED
        resources = Resources.of(job.spec)
        taken = db_nodes.join_node(session, job_id, attempt, resources.nnodes, worker)
        if taken is None:
            return NOT_NEEDED
        try:
            document = resolve_spec(session, Path(settings.storage_dir), job.spec)
        except (NotReadyError, BadReferenceError):  # the first worker resolved it: gone since
            log.exception("job %s: cannot resolve its spec on this machine", job_id)
            return NOT_NEEDED
        # The checkpoint the first worker continues from: nothing newer exists before every
        # machine joined (training starts after the rendezvous).
        checkpoint = resume_point(session, settings, job_id) if job.resume else None
    node, endpoint = taken
    log.info("job %s attempt %s: joining as node %s at %s", job_id, attempt, node, endpoint)
    outcome = supervise(
        settings,
        "train",
        job_id,
        attempt,
        document,
        checkpoint,
        Node(resources.nnodes, endpoint, False, settings.node_join_timeout_s),
        owner=False,
    )
    if outcome.kind != "joined":
        log.warning("job %s node %s: %s %s", job_id, node, outcome.kind, outcome.message)
    return JOINED
