"""OpenAI-format jobs trained for real (the runner driven directly, the API through the
official openai SDK): DPO from OpenAI's JSONL, pause and resume, and what a finished job shows."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from server.config import Settings
from server.db.models import Metric
from server.db.session import new_session
from tests.server.openai_sdk import dpo_rows, jsonl_file, sdk
from worker.callback import DbWriter
from worker.runner import run_train_job

pytestmark = pytest.mark.slow  # each trains tiny-llama for 8 steps or more

MODEL = "builtin:tiny-llama"
# 8 rows, batches of 4, 4 epochs: 8 steps; a checkpoint every 2 steps.
DPO: dict[str, Any] = {
    "type": "dpo",
    "dpo": {"hyperparameters": {"batch_size": 4, "n_epochs": 4, "learning_rate_multiplier": 100}},
}
QUIET = {"gro": {"spec": {"eval": {"every": 0}, "checkpoint": {"every": 2, "keep": 2}}}}


@pytest.fixture
def alice_sdk(client: TestClient, keys: dict[str, str]) -> openai.OpenAI:
    return sdk(client, keys["alice"])


def losses(settings: Settings, job_id: str) -> dict[int, float]:
    with new_session(settings.database_url) as session:
        query = select(Metric).where(Metric.job_id == job_id, Metric.name == "loss/policy")
        return {m.step: m.value for m in session.scalars(query)}


def metric(settings: Settings, job_id: str, name: str, step: int) -> float:
    with new_session(settings.database_url) as session:
        return session.get(Metric, (job_id, name, step)).value


def create(client: openai.OpenAI, file_id: str) -> str:
    job = client.fine_tuning.jobs.create(
        model=MODEL, training_file=file_id, method=DPO, seed=3, extra_body=QUIET
    )
    return job.id


def test_an_openai_dpo_file_trains_through_the_sdk(alice_sdk: openai.OpenAI, settings: Settings):
    jobs = alice_sdk.fine_tuning.jobs
    file_id = alice_sdk.files.create(file=jsonl_file(dpo_rows(8)), purpose="fine-tune").id
    job_id = create(alice_sdk, file_id)
    run_train_job(settings, job_id, "w1")
    done = jobs.retrieve(job_id)
    assert (done.status, done.fine_tuned_model, done.error) == ("succeeded", job_id, None)
    assert isinstance(done.finished_at, int) and done.finished_at >= done.created_at
    loss = losses(settings, job_id)
    assert sorted(loss) == list(range(1, 9))
    assert done.trained_tokens == metric(settings, job_id, "train/tokens", 8) > 0
    assert loss[8] < loss[1]  # the preferred answer became likelier
    events = list(jobs.list_events(job_id, limit=5))
    assert events[0].data["kind"] == "succeeded" and events[0].level == "info"
    metrics = [e for e in events if e.type == "metrics"]
    assert {e.data["step"] for e in metrics} == {2, 4, 6, 8}
    assert all("loss/policy" in e.data for e in metrics)
    checkpoints = list(jobs.checkpoints.list(job_id, limit=1))
    assert [c.step_number for c in checkpoints] == [8, 6]  # two kept, newest first
    assert checkpoints[0].object == "fine_tuning.job.checkpoint"
    assert checkpoints[0].metrics.step == 8
    assert checkpoints[0].metrics.to_dict()["loss/policy"] == pytest.approx(loss[8])
    # what it produced is a model name a next job starts from
    follow = jobs.create(model=done.fine_tuned_model, training_file=file_id, method=DPO)
    assert follow.model == job_id
    follow = jobs.create(
        model=checkpoints[1].fine_tuned_model_checkpoint, training_file=file_id, method=DPO
    )
    assert follow.status == "queued"


def test_pause_checkpoints_and_resume_continues_the_same_run(
    alice_sdk: openai.OpenAI, settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    settings = settings.model_copy(update={"job_isolation": "inline"})  # patched below
    jobs = alice_sdk.fine_tuning.jobs
    file_id = alice_sdk.files.create(file=jsonl_file(dpo_rows(8)), purpose="fine-tune").id
    reference = create(alice_sdk, file_id)
    run_train_job(settings, reference, "w0")
    job_id = create(alice_sdk, file_id)
    original = DbWriter.on_step_end

    def pause_at_3(self: DbWriter, step: int, total: int, metrics: dict) -> None:
        original(self, step, total, metrics)
        if step == 3:  # as a user would, through the SDK, while step 3 finishes
            assert jobs.pause(job_id).status == "running"

    monkeypatch.setattr(DbWriter, "on_step_end", pause_at_3)
    run_train_job(settings, job_id, "w1")
    monkeypatch.setattr(DbWriter, "on_step_end", original)
    paused = jobs.retrieve(job_id)
    assert (paused.status, paused.finished_at, paused.fine_tuned_model) == ("paused", None, None)
    assert 3 in [c.step_number for c in jobs.checkpoints.list(job_id)]
    assert sorted(losses(settings, job_id)) == [1, 2, 3]
    assert jobs.resume(job_id).status == "queued"
    run_train_job(settings, job_id, "w2")
    done = jobs.retrieve(job_id)
    assert done.status == "succeeded"
    assert done.trained_tokens == jobs.retrieve(reference).trained_tokens  # counted on
    # continuous: every step once, each the value of the run that never paused
    assert losses(settings, job_id) == pytest.approx(losses(settings, reference))
    kinds = [e.data["kind"] for e in jobs.list_events(job_id)]
    assert kinds.index("succeeded") < kinds.index("resume_requested") < kinds.index("paused")
