"""The worker's job runner, driven directly (no Celery): claim, train, write, finish."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from server.config import Settings
from server.db import jobs as db_jobs
from server.db import outputs
from server.db.models import Checkpoint, Job, JobEvent, Metric, Sample
from server.db.session import new_session, session_scope
from server.queue import RecordingQueue
from tests.server.conftest import PAIRS, Api
from tests.worker.conftest import tiny_dpo
from worker import execute, runner
from worker.callback import DbWriter
from worker.reconcile import reconcile
from worker.runner import SKIPPED, WAITING, run_train_job


def rows(settings: Settings, model, job_id: str) -> list:
    with new_session(settings.database_url) as session:
        return list(session.scalars(select(model).where(model.job_id == job_id)))


def job_row(settings: Settings, job_id: str) -> Job:
    with new_session(settings.database_url) as session:
        return session.get(Job, job_id)


def inline(settings: Settings) -> Settings:
    """The job runs in the test's process, where the test patches the trainer or the writer."""
    return settings.model_copy(update={"job_isolation": "inline"})


def loss_by_step(settings: Settings, job_id: str) -> dict[int, float]:
    return {m.step: m.value for m in rows(settings, Metric, job_id) if m.name == "loss/policy"}


def test_a_job_trains_and_its_outputs_land_in_the_database(alice: Api, settings: Settings):
    job = alice.job(tiny_dpo(alice.dataset(PAIRS)))
    assert run_train_job(settings, job["id"], "w1") == "succeeded"
    done = job_row(settings, job["id"])
    assert (done.status, done.step, done.total_steps, done.attempts) == ("succeeded", 8, 8, 1)
    assert done.final_metrics["loss/policy"] == loss_by_step(settings, job["id"])[8]
    assert sorted(loss_by_step(settings, job["id"])) == list(range(1, 9))
    elapsed = [m for m in rows(settings, Metric, job["id"]) if m.name == "time/elapsed_s"]
    assert len(elapsed) == 8 and all(m.value > 0 for m in elapsed)
    samples = rows(settings, Sample, job["id"])
    assert samples and all(s.advantage in (1.0, -1.0) for s in samples)
    checkpoints = rows(settings, Checkpoint, job["id"])
    assert sorted(c.step for c in checkpoints) == [6, 8]  # keep: 2, older rows pruned
    assert all((Path(settings.storage_dir) / c.path / "trainer.pt").is_file() for c in checkpoints)
    kinds = [e.kind for e in rows(settings, JobEvent, job["id"])]
    assert kinds[:3] == ["created", "claimed", "started"] and kinds.count("checkpoint") == 4
    # a redelivered message finds the job finished and does nothing
    assert run_train_job(settings, job["id"], "w2") == SKIPPED
    assert job_row(settings, job["id"]).attempts == 1


def test_cancel_stops_after_the_current_step_keeping_a_checkpoint(
    alice: Api, settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    settings = inline(settings)
    job = alice.job(tiny_dpo(alice.dataset(PAIRS), steps=50))
    original = DbWriter.on_step_end

    def cancel_at_3(self: DbWriter, step: int, total: int, metrics: dict) -> None:
        original(self, step, total, metrics)
        if step == 3:  # as a user would, through the API, while step 3 finishes
            assert alice.post(f"/v1/jobs/{job['id']}/cancel").json()["cancel_requested"]

    monkeypatch.setattr(DbWriter, "on_step_end", cancel_at_3)
    assert run_train_job(settings, job["id"], "w1") == "cancelled"
    done = job_row(settings, job["id"])
    assert (done.status, done.step) == ("cancelled", 3)
    assert max(loss_by_step(settings, job["id"])) == 3
    assert 3 in [c.step for c in rows(settings, Checkpoint, job["id"])]


def test_bad_data_fails_the_job_with_a_clear_error(alice: Api, settings: Settings):
    dataset = alice.dataset(PAIRS)
    job = alice.job(tiny_dpo(dataset))
    stored = next((Path(settings.storage_dir) / "datasets" / dataset).iterdir())
    stored.write_text('{"prompt": "a", "chosen": "b"}\n')  # damaged on disk after upload
    assert run_train_job(settings, job["id"], "w1") == "failed"
    done = job_row(settings, job["id"])
    assert done.error_code == "bad_data" and "line 1" in done.error_message
    assert "rejected" in done.error_message
    assert [e.kind for e in rows(settings, JobEvent, job["id"])][-1] == "failed"


def test_non_finite_loss_fails_naming_the_step(alice: Api, settings: Settings):
    job = alice.job(tiny_dpo(alice.dataset(PAIRS), lr=1e30, max_grad_norm=None))
    assert run_train_job(settings, job["id"], "w1") == "failed"
    done = job_row(settings, job["id"])
    assert done.error_code == "non_finite" and "step" in done.error_message


def test_a_job_starting_from_an_unfinished_job_waits(alice: Api, settings: Settings):
    dataset = alice.dataset(PAIRS)
    first = alice.job(tiny_dpo(dataset))
    second = alice.job({**tiny_dpo(dataset), "model": first["id"]})
    assert run_train_job(settings, second["id"], "w1") == WAITING
    assert run_train_job(settings, second["id"], "w1") == WAITING
    waiting = [e for e in rows(settings, JobEvent, second["id"]) if e.kind == "waiting"]
    assert len(waiting) == 1 and first["id"] in waiting[0].message
    assert run_train_job(settings, first["id"], "w1") == "succeeded"
    assert run_train_job(settings, second["id"], "w1") == "succeeded"


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing records it."""


def test_a_crashed_job_is_requeued_and_resumes_without_gaps_or_duplicates(
    alice: Api, settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    settings = inline(settings)
    dataset = alice.dataset(PAIRS)
    reference = alice.job(tiny_dpo(dataset))
    assert run_train_job(settings, reference["id"], "w0") == "succeeded"
    job = alice.job(tiny_dpo(dataset))
    original = DbWriter.on_step_end

    def die_at_5(self: DbWriter, step: int, total: int, metrics: dict) -> None:
        original(self, step, total, metrics)
        if step == 5:
            self.flush()
            raise Crash

    monkeypatch.setattr(DbWriter, "on_step_end", die_at_5)
    with pytest.raises(Crash):
        run_train_job(settings, job["id"], "w1")
    monkeypatch.setattr(DbWriter, "on_step_end", original)
    assert job_row(settings, job["id"]).status == "running"  # nobody recorded the crash
    with session_scope(settings.database_url) as session:  # its heartbeat goes stale
        session.get(Job, job["id"]).heartbeat_at = db_jobs.ago(60)
    queue = RecordingQueue()
    assert reconcile(settings, queue) == [job["id"]] and queue.sent == [(job["id"], "train")]
    assert job_row(settings, job["id"]).status == "queued"
    assert run_train_job(settings, job["id"], "w2") == "succeeded"
    done = job_row(settings, job["id"])
    assert (done.attempts, done.step) == (2, 8)
    # steps 5 was written by the dead attempt after its checkpoint at 4: dropped, written again
    assert loss_by_step(settings, job["id"]) == loss_by_step(settings, reference["id"])
    kinds = [e.kind for e in rows(settings, JobEvent, job["id"])]
    assert "requeued" in kinds and "resumed" in kinds
    claimed = [e.message for e in rows(settings, JobEvent, job["id"]) if e.kind == "claimed"]
    assert claimed[-1].endswith("from step 4")


def test_a_lost_message_is_sent_again_once(alice: Api, settings: Settings, monkeypatch):
    monkeypatch.setattr(alice.client.app.state, "queue", RecordingQueue(reachable=False))
    job = alice.job(tiny_dpo(alice.dataset(PAIRS)))  # the broker was down: never sent
    queue = RecordingQueue()
    assert reconcile(settings, queue) == [job["id"]]
    assert reconcile(settings, queue) == []  # sent just now: not lost (yet)
    with session_scope(settings.database_url) as session:
        session.get(Job, job["id"]).enqueued_at = db_jobs.ago(60)
    pending = RecordingQueue()
    pending.sent = [(job["id"], "train")]  # its message waits in the queue: not lost
    assert reconcile(settings, pending) == []


def test_two_attempts_never_both_own_a_job(alice: Api, settings: Settings):
    job = alice.job(tiny_dpo(alice.dataset(PAIRS)))
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda n=n: results.append(run_train_job(settings, job["id"], n)))
        for n in ("a", "b")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [SKIPPED, "succeeded"]
    assert job_row(settings, job["id"]).attempts == 1


def test_an_evaluation_stores_results_and_completions(alice: Api, settings: Settings):
    dataset = alice.dataset(PAIRS)
    trained = alice.job(tiny_dpo(dataset, steps=2))
    assert run_train_job(settings, trained["id"], "w1") == "succeeded"
    body = alice.post(
        "/v1/evaluations",
        json={
            "model": trained["id"],
            "dataset": "builtin:arithmetic",
            "num_prompts": 4,
            "num_generations": 3,
            "max_new_tokens": 6,
        },
    ).json()
    from worker.runner import run_evaluation_job

    assert run_evaluation_job(settings, body["id"], "w1") == "succeeded"
    done = alice.get(f"/v1/evaluations/{body['id']}").json()
    results = done["results"]
    for name in ("eval/reward", "eval/pass@1", "eval/pass@3", "eval/distinct_1", "eval/kl_ref"):
        assert name in results, name
    lines = alice.get(f"/v1/evaluations/{body['id']}/completions.jsonl").text.splitlines()
    assert len(lines) == 4 * (1 + 3)  # one greedy and three sampled per prompt
    again = alice.upload(("\n".join(lines) + "\n").encode(), name="c.jsonl")
    assert again.status_code == 201 and again.json()["rows"] == 16


def test_a_resumed_job_is_claimed_in_one_session_dropping_stale_outputs_once(
    alice: Api, settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    settings = inline(settings)
    job = alice.job(tiny_dpo(alice.dataset(PAIRS), steps=4))
    original = DbWriter.on_step_end

    def die_at_3(self: DbWriter, step: int, total: int, metrics: dict) -> None:
        original(self, step, total, metrics)
        if step == 3:  # after the checkpoint of step 2: step 3's outputs are stale
            self.flush()
            raise Crash

    monkeypatch.setattr(DbWriter, "on_step_end", die_at_3)
    with pytest.raises(Crash):
        run_train_job(settings, job["id"], "w1")
    monkeypatch.setattr(DbWriter, "on_step_end", original)
    with session_scope(settings.database_url) as session:
        db_jobs.requeue_dead(session, db_jobs.ago(-60))  # as the reconciler would
    sessions: list[str] = []
    real_scope, real_run, real_delete = runner.session_scope, execute.run, outputs.delete_after
    deletes: list[int] = []
    before_training: list[int] = []

    def counted(url: str):
        sessions.append(url)
        return real_scope(url)

    def training(*args, **kwargs):
        before_training.append(len(sessions))  # sessions opened to prepare and claim
        return real_run(*args, **kwargs)

    monkeypatch.setattr(runner, "session_scope", counted)
    monkeypatch.setattr(execute, "run", training)
    monkeypatch.setattr(
        outputs, "delete_after", lambda s, j, step: (deletes.append(step), real_delete(s, j, step))
    )
    assert run_train_job(settings, job["id"], "w2") == "succeeded"
    assert before_training == [1]  # one session prepared and claimed the job
    assert deletes == [2]  # stale outputs (step 3 of the dead attempt) dropped once, at claim
    assert sorted(loss_by_step(settings, job["id"])) == [1, 2, 3, 4]
    clock = {
        m.step: m.value for m in rows(settings, Metric, job["id"]) if m.name == "time/elapsed_s"
    }
    assert clock[2] < clock[3] < clock[4]  # the elapsed-time axis went on from step 2
    claimed = [e.message for e in rows(settings, JobEvent, job["id"]) if e.kind == "claimed"]
    assert claimed[-1] == "attempt 2 on w2, from step 2"


def test_a_checkpoint_saved_but_never_recorded_is_not_resumed_from(
    alice: Api, settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    settings = inline(settings)
    # The worker dies after a checkpoint's files are written but before it records them (and
    # the metrics buffered before them): resuming from those files would skip those metrics.
    dataset = alice.dataset(PAIRS)
    reference = alice.job(tiny_dpo(dataset))
    assert run_train_job(settings, reference["id"], "w0") == "succeeded"
    job = alice.job(tiny_dpo(dataset))
    original = DbWriter.on_checkpoint

    def die_recording_step_4(self: DbWriter, step: int, path: Path) -> None:
        if step == 4:
            raise Crash  # step-4 is on disk; its row and steps 3-4's metrics are not written
        original(self, step, path)

    monkeypatch.setattr(DbWriter, "on_checkpoint", die_recording_step_4)
    with pytest.raises(Crash):
        run_train_job(settings, job["id"], "w1")
    monkeypatch.setattr(DbWriter, "on_checkpoint", original)
    assert (runner.job_dir(settings, job["id"]) / "checkpoints" / "step-4").is_dir()
    with session_scope(settings.database_url) as session:
        db_jobs.requeue_dead(session, db_jobs.ago(-60))  # as the reconciler would
    assert run_train_job(settings, job["id"], "w2") == "succeeded"
    claimed = [e.message for e in rows(settings, JobEvent, job["id"]) if e.kind == "claimed"]
    assert claimed[-1].endswith("from step 2")
    assert loss_by_step(settings, job["id"]) == loss_by_step(settings, reference["id"])


def test_weights_made_inf_by_a_huge_lr_are_never_listed_as_a_checkpoint(
    alice: Api, settings: Settings
):
    spec = tiny_dpo(alice.dataset(PAIRS), lr=1e39)
    job = alice.job({**spec, "checkpoint": {"every": 1, "keep": 2}})  # one after every step
    assert run_train_job(settings, job["id"], "w1") == "failed"
    done = job_row(settings, job["id"])
    assert (
        done.error_code == "non_finite" and "non-finite weights after step 1" in done.error_message
    )
    assert "no checkpoint was saved" in done.error_message
    assert rows(settings, Checkpoint, job["id"]) == []
    assert not (runner.job_dir(settings, job["id"]) / "checkpoints" / "step-1").exists()
