"""Generations: the playground's prompt completed by up to four models, on the light queue.

The request becomes a job of kind `generation` (a short time limit: GRO_GENERATION_TIME_LIMIT_S)
whose stored spec is the request; the worker writes one sample per model (step 0, in request
order) with its completion, reward and error, which the answer lists as `completions`.
"""

from __future__ import annotations

import json

from sqlalchemy.orm import Session

from server.config import Settings
from server.db.jobs import create_job
from server.db.models import Job, Owner
from server.db.outputs import samples_after
from server.queue import JobQueue
from server.schemas.generations import Completion, GenerationIn, GenerationOut
from server.services.jobs import enqueue, job_error
from server.services.limits import check_active_jobs, check_sizes
from server.services.specs import check_model_ref, invalid


def check_generation(
    session: Session, owner: Owner, request: GenerationIn, settings: Settings
) -> None:
    """One of prompt or messages; each model one this owner may use; sizes under the limits."""
    if (request.prompt is None) == (request.messages is None):
        raise invalid("prompt", "give exactly one of prompt (text) or messages (a chat)")
    if request.messages is not None and not request.messages:
        raise invalid("messages", "a chat needs at least one message")
    text = request.prompt if request.prompt is not None else request.model_dump()["messages"]
    size = len(json.dumps([text, request.fields], ensure_ascii=False).encode())
    tokens = request.sampling.max_new_tokens
    sizes = [
        ("sampling.max_new_tokens", tokens, "limit_max_new_tokens", ""),
        ("prompt", size, "limit_row_bytes", "a prompt and fields of bytes "),
    ]
    check_sizes(sizes, settings)
    for i, name in enumerate(request.checkpoints):
        check_model_ref(session, owner, name, f"checkpoints.{i}", settings)
    check_active_jobs(session, owner, settings)


def start_generation(
    session: Session, queue: JobQueue, owner: Owner, request: GenerationIn, settings: Settings
) -> Job:
    """Store the generation as a queued job, commit, then send it to the light queue."""
    check_generation(session, owner, request, settings)
    stored = {"request": request.model_dump(mode="json", exclude_none=True)}
    job = create_job(session, owner, stored, kind="generation", method="generate")
    session.commit()
    enqueue(session, queue, job)
    return job


def generation_out(session: Session, job: Job) -> GenerationOut:
    """The generation as it is now: a completion per model once the worker wrote them."""
    request = job.spec["request"]
    models = len(request["checkpoints"])  # the worker writes one sample per model, at step 0
    written = {s.idx: s for s in samples_after(session, job.id, None, models) if s.step == 0}
    completions = []
    for i, name in enumerate(request["checkpoints"]):
        sample = written.get(i)
        if sample is None:
            completions.append(Completion(checkpoint=name, completion=None))
            continue
        extra = sample.extra
        completions.append(
            Completion(
                checkpoint=name,
                completion=None if extra.get("error") else sample.completion,
                tokens=extra.get("tokens"),
                finish_reason=extra.get("finish_reason"),
                reward=sample.reward,
                reward_note=extra.get("reward_note"),
                error=extra.get("error"),
            )
        )
    return GenerationOut(
        id=job.id,
        status=job.status,
        request=request,
        completions=completions,
        created_at=job.created_at,
        finished_at=job.finished_at,
        error=job_error(job),
    )
