"""The openai SDK against the whole stack as real processes (uvicorn, a Celery worker,
redis-server, PostgreSQL): pause a running job, resume it, cancel it."""

from __future__ import annotations

import openai
import pytest

from server.db.models import Metric
from tests.server.openai_sdk import dpo_rows, jsonl_file
from tests.service import Service
from tests.worker.test_stack import services  # noqa: F401  (the fixture)

pytestmark = pytest.mark.slow


def steps_of(stack: Service, job_id: str) -> list[int]:
    return sorted(m.step for m in stack.rows(Metric, job_id) if m.name == "loss/policy")


def test_pause_resume_cancel_across_processes(services: Service):  # noqa: F811
    key = services.api.headers["Authorization"].removeprefix("Bearer ")
    client = openai.OpenAI(base_url=f"{services.api.base_url}/v1", api_key=key, max_retries=0)
    jobs = client.fine_tuning.jobs
    file_id = client.files.create(file=jsonl_file(dpo_rows(8)), purpose="fine-tune").id
    job = jobs.create(
        model="builtin:tiny-llama",
        training_file=file_id,
        method={"type": "dpo", "dpo": {"hyperparameters": {"batch_size": 4, "n_epochs": 1000}}},
        extra_body={"gro": {"spec": {"eval": {"every": 0}, "checkpoint": {"every": 0}}}},
    )
    services.start_worker()
    services.wait(lambda: (jobs.retrieve(job.id).estimated_finish or 0) > 0, 180, "running")
    jobs.pause(job.id)
    services.wait(lambda: jobs.retrieve(job.id).status == "paused", 60, "paused")
    paused_at = steps_of(services, job.id)[-1]
    assert [c.step_number for c in jobs.checkpoints.list(job.id)] == [paused_at]
    assert jobs.resume(job.id).status == "queued"
    services.wait(lambda: steps_of(services, job.id)[-1] > paused_at + 2, 120, "resumed steps")
    assert jobs.cancel(job.id).status == "running"  # stops after this step
    services.wait(lambda: jobs.retrieve(job.id).status == "cancelled", 60, "cancelled")
    steps = steps_of(services, job.id)
    assert steps == list(range(1, steps[-1] + 1))  # continuous across the pause
    levels = {e.data["kind"]: e.level for e in jobs.list_events(job.id)}
    assert levels["paused"] == "info" and levels["pause_requested"] == "warn"
