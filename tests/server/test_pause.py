"""Pause in the job table: a paused run ends `paused` (not finished), a cancelled one
`cancelled`; both on SQLite and PostgreSQL, as the worker's conditional updates run them."""

from __future__ import annotations

from server.config import Settings
from server.db import jobs as db_jobs
from server.db.models import CANCELLED, SUCCEEDED, Job, JobEvent
from server.db.session import session_scope
from tests.server.conftest import PAIRS, Api, dpo_spec


def running(alice: Api, settings: Settings) -> tuple[str, int]:
    job_id = alice.job(dpo_spec(alice.dataset(PAIRS)))["id"]
    with session_scope(settings.database_url) as session:
        attempt = db_jobs.claim(session, job_id, "w1")
    assert attempt is not None
    return job_id, attempt


def stop(settings: Settings, job_id: str, attempt: int, status: str = CANCELLED) -> Job:
    with session_scope(settings.database_url) as session:
        assert db_jobs.finish(session, job_id, attempt, status, step=3)
    with session_scope(settings.database_url) as session:
        job = session.get(Job, job_id)
        session.expunge(job)
        return job


def kinds(settings: Settings, job_id: str) -> list[str]:
    with session_scope(settings.database_url) as session:
        return [e.kind for e in session.query(JobEvent).filter_by(job_id=job_id)]


def test_a_paused_run_ends_paused_unfinished(alice: Api, settings: Settings):
    job_id, attempt = running(alice, settings)
    shown = alice.post(f"/v1/jobs/{job_id}/pause").json()
    assert (shown["status"], shown["cancel_requested"]) == ("running", True)
    assert alice.post(f"/v1/jobs/{job_id}/pause").status_code == 409  # already stopping
    job = stop(settings, job_id, attempt)
    assert (job.status, job.finished_at, job.step) == ("paused", None, 3)
    assert not (job.cancel_requested or job.pause_requested)
    assert kinds(settings, job_id)[-2:] == ["pause_requested", "paused"]


def test_a_cancel_after_a_pause_request_wins(alice: Api, settings: Settings):
    job_id, attempt = running(alice, settings)
    alice.post(f"/v1/jobs/{job_id}/pause")
    alice.post(f"/v1/jobs/{job_id}/cancel")
    job = stop(settings, job_id, attempt)
    assert job.status == "cancelled" and job.finished_at is not None


def test_a_run_that_ends_before_pausing_succeeds_with_a_final_event(alice: Api, settings: Settings):
    job_id, attempt = running(alice, settings)
    alice.post(f"/v1/jobs/{job_id}/pause")
    job = stop(settings, job_id, attempt, SUCCEEDED)
    assert job.status == "succeeded" and not job.pause_requested
    assert kinds(settings, job_id)[-1] == "succeeded"


def test_a_paused_job_cancels_at_once_and_its_dataset_stays_in_use(alice: Api, settings: Settings):
    dataset = alice.dataset(PAIRS)
    job_id = alice.job(dpo_spec(dataset))["id"]
    assert alice.post(f"/v1/jobs/{job_id}/pause").json()["status"] == "paused"
    assert alice.delete(f"/v1/datasets/{dataset}").status_code == 409
    assert alice.post(f"/v1/jobs/{job_id}/cancel").json()["status"] == "cancelled"
    assert alice.post(f"/v1/jobs/{job_id}/resume").json()["status"] == "queued"
