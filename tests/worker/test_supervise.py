"""Jobs in a child process the worker watches: cancel, memory cap, hung and slow rewards end a
job within seconds wherever it is; a job that loses its worker again and again stops there."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import pytest
import torch
from sqlalchemy.exc import OperationalError

from server.config import Settings
from server.db import jobs as db_jobs
from server.db.models import Job, JobEvent
from server.db.session import new_session, session_scope
from server.queue import RecordingQueue
from tests.server.conftest import PAIRS, Api
from tests.worker.conftest import tiny_dpo
from tests.worker.hostile import hostile
from worker.execute import failure
from worker.reconcile import reconcile
from worker.runner import run_train_job


def job_row(settings: Settings, job_id: str) -> Job:
    with new_session(settings.database_url) as session:
        return session.get(Job, job_id)


def events(settings: Settings, job_id: str) -> list[JobEvent]:
    with new_session(settings.database_url) as session:
        return list(session.query(JobEvent).filter_by(job_id=job_id).order_by(JobEvent.id))


def die(settings: Settings, job_id: str, worker: str) -> None:
    """Claim the job as `worker`, then fall silent: the reconciler finds it dead."""
    with session_scope(settings.database_url) as session:
        assert db_jobs.claim(session, job_id, worker) is not None
        session.get(Job, job_id).heartbeat_at = db_jobs.ago(600)


# --- the reconciler and error codes (no training) --------------------------------------------


def test_a_job_losing_its_worker_too_often_fails_worker_lost(alice: Api, settings: Settings):
    settings = settings.model_copy(update={"max_requeues": 2})
    job = alice.job(tiny_dpo(alice.dataset(PAIRS)))
    queue = RecordingQueue()
    for attempt in (1, 2):
        die(settings, job["id"], f"w{attempt}@host")
        assert reconcile(settings, queue) == [job["id"]]
        assert job_row(settings, job["id"]).status == "queued"
    die(settings, job["id"], "w3@host")
    assert reconcile(settings, queue) == []
    done = job_row(settings, job["id"])
    assert (done.status, done.error_code) == ("failed", "worker_lost")
    last = events(settings, job["id"])[-1]
    assert last.kind == "failed" and "all 3 attempts (1-3)" in last.message
    assert "queued again 2 times" in last.message and "w3@host" in last.message


def test_the_requeue_event_names_the_silent_worker(alice: Api, settings: Settings):
    job = alice.job(tiny_dpo(alice.dataset(PAIRS)))
    die(settings, job["id"], "w1@host")
    reconcile(settings, RecordingQueue())
    [requeued] = [e for e in events(settings, job["id"]) if e.kind == "requeued"]
    assert requeued.message.startswith("worker w1@host silent for")


def test_a_resend_the_broker_refused_is_not_reported_as_sent(
    alice: Api, settings: Settings, caplog: pytest.LogCaptureFixture
):
    job = alice.job(tiny_dpo(alice.dataset(PAIRS)))
    die(settings, job["id"], "w1@host")
    with caplog.at_level(logging.INFO, logger="gro.worker"):
        assert reconcile(settings, RecordingQueue(reachable=False)) == []
    assert "sent again" not in caplog.text and "could not send again" in caplog.text
    assert events(settings, job["id"])[-1].kind == "enqueue_failed"


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError(
            "[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate "
            "memory: you tried to allocate 4000000000 bytes"
        ),
        torch.OutOfMemoryError("tried to allocate 20.00 GiB"),
        MemoryError(),
        OSError(12, "Cannot allocate memory"),
    ],
)
def test_allocation_failures_are_out_of_memory(error: BaseException):
    assert failure(error)[0] == "out_of_memory"


# --- jobs in a child process ------------------------------------------------------------------


@pytest.fixture
def marks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "marks"
    folder.mkdir()
    monkeypatch.setenv("GRO_TEST_MARKS", str(folder))  # the job's child inherits it
    return folder


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The worker tests' settings, with python rewards allowed (the API checks it too)."""
    return settings.model_copy(update={"allow_python_rewards": True, "cancel_grace_s": 1.0})


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.slow
def test_cancel_ends_jobs_stuck_holding_the_gil_on_two_workers(
    alice: Api, settings: Settings, marks: Path
):
    ids = [alice.job(hostile("holds_the_gil"))["id"] for _ in range(2)]
    results: dict[str, str] = {}
    workers = [
        threading.Thread(target=lambda j=j, n=n: results.update({j: run_train_job(settings, j, n)}))
        for n, j in zip(("w1", "w2"), ids, strict=True)
    ]
    for worker in workers:
        worker.start()
    wait_for(lambda: len(list(marks.glob("gil-*"))) == 2, 120, "both rewards to start")
    cancelled_at = time.monotonic()
    for job_id in ids:
        assert alice.post(f"/v1/jobs/{job_id}/cancel").status_code == 200
    for worker in workers:
        worker.join(60)
    seconds = time.monotonic() - cancelled_at
    print(f"both GIL-holding jobs cancelled in {seconds:.1f}s")
    assert results == {j: "cancelled" for j in ids}
    assert seconds < 10, f"took {seconds:.1f}s to stop"
    assert all(job_row(settings, j).status == "cancelled" for j in ids)
    assert "did not reach a step boundary" in events(settings, ids[0])[-1].message
    # neither worker is left hung: each runs its next job
    nxt = alice.job(tiny_dpo(alice.dataset(PAIRS), steps=2))
    assert run_train_job(settings, nxt["id"], "w1") == "succeeded"


@pytest.mark.slow
def test_a_child_holding_the_gil_too_long_is_killed_as_hung(
    alice: Api, settings: Settings, marks: Path
):
    settings = settings.model_copy(update={"job_silent_s": 3.0})
    job = alice.job(hostile("holds_the_gil"))
    assert run_train_job(settings, job["id"], "w1") == "failed"
    done = job_row(settings, job["id"])
    assert done.error_code == "hung" and "stopped responding" in done.error_message


@pytest.mark.slow
def test_a_reward_past_its_bound_fails_the_job_with_reward_timeout(
    alice: Api, settings: Settings, marks: Path
):
    settings = settings.model_copy(update={"reward_timeout_s": 1.0})
    job = alice.job(hostile("sleeps"))
    assert run_train_job(settings, job["id"], "w1") == "failed"
    done = job_row(settings, job["id"])
    assert done.error_code == "reward_timeout" and "rewards.0 (python)" in done.error_message
    assert list(marks.glob("sleep-*"))


@pytest.mark.slow
def test_a_job_over_its_memory_cap_fails_out_of_memory(alice: Api, settings: Settings, marks: Path):
    settings = settings.model_copy(update={"max_job_rss_bytes": 1536 * 2**20})
    job = alice.job(hostile("eats_memory"))
    assert run_train_job(settings, job["id"], "w1") == "failed"
    done = job_row(settings, job["id"])
    assert done.error_code == "out_of_memory" and "GRO_MAX_JOB_RSS_BYTES" in done.error_message
    assert list(marks.glob("memory-*"))  # it was the reward that grew, not the loading


def _niceness_marks(marks: Path) -> set[str]:
    """What `reports_niceness` left, without the pid each mark's name ends in."""
    return {path.name.rsplit("-", 1)[0] for path in marks.glob("nice*")}


@pytest.mark.slow
def test_a_job_runs_at_the_train_niceness_above_its_worker(
    alice: Api, settings: Settings, marks: Path
):
    settings = settings.model_copy(update={"train_nice": 7})
    job = alice.job(hostile("reports_niceness", steps=1))
    assert run_train_job(settings, job["id"], "w1") == "succeeded"
    assert _niceness_marks(marks) == {
        f"nice{min(19, os.nice(0) + 7)}"
    }  # so the API, not training, runs first


@pytest.mark.slow
def test_a_job_runs_under_sched_idle_when_asked(alice: Api, settings: Settings, marks: Path):
    settings = settings.model_copy(update={"train_nice": 0, "train_sched_idle": True})
    job = alice.job(hostile("reports_niceness", steps=1))
    assert run_train_job(settings, job["id"], "w1") == "succeeded"
    assert _niceness_marks(marks) == {
        f"nice{os.nice(0)}-idle"
    }  # any request the API wakes for preempts it


@pytest.mark.slow
def test_a_database_hiccup_while_watching_a_job_does_not_end_it(
    alice: Api, settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    real, calls = db_jobs.beat, []

    def flaky(session, job_id: str, attempt: int, **fields) -> bool:
        calls.append(fields)
        if len(calls) <= 2:  # the child's beats run in its own process: these are the worker's
            raise OperationalError("UPDATE jobs", {}, Exception("database is locked"))
        return real(session, job_id, attempt, **fields)

    monkeypatch.setattr(db_jobs, "beat", flaky)  # in this process only: the worker's side
    # At least 3 s (12 rewards of 0.25 s) on any machine: 6 beats at 0.5 s, 4 after the two
    # failures (30 dpo steps ran in under 1.5 s on a fast machine: two beats, a failed test).
    job = alice.job(hostile("takes_a_while", steps=12))
    assert run_train_job(settings, job["id"], "w1") == "succeeded"
    assert len(calls) >= 3
