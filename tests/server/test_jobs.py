"""/v1/jobs: submit (validated, enqueued after commit), list, get, cancel, resume, events."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from server.config import Settings
from server.db import jobs as db_jobs
from server.db.models import Job
from server.db.session import new_session, session_scope
from server.queue import RecordingQueue
from tests.server.conftest import PAIRS, PROMPTS, Api, dpo_spec


def job_count(settings: Settings) -> int:
    with new_session(settings.database_url) as session:
        return session.scalar(select(func.count()).select_from(Job))


class CommitCheckingQueue(RecordingQueue):
    """Fails unless the job's row is visible from another session when it is enqueued."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url

    def enqueue(self, job_id: str, kind: str, procs: int = 1) -> None:
        with new_session(self.url) as session:
            assert session.get(Job, job_id) is not None, "enqueued before the commit"
        super().enqueue(job_id, kind, procs)


def test_submit_stores_a_queued_job_and_enqueues_it_after_commit(
    alice: Api, settings: Settings, queue: RecordingQueue, monkeypatch: pytest.MonkeyPatch
):
    checking = CommitCheckingQueue(settings.database_url)
    monkeypatch.setattr(alice.client.app.state, "queue", checking)
    dataset = alice.dataset(PAIRS)
    job = alice.job(dpo_spec(dataset))
    assert job["status"] == "queued" and job["method"] == "dpo"
    assert job["progress"] == {"step": 0, "total_steps": 5, "eta_seconds": None}
    assert checking.sent == [(job["id"], "train")]
    # the stored spec is the resolved one: every default written out
    assert job["spec"]["train"]["lr"] == 1e-5 and job["spec"]["rollout"]["num_generations"] == 8
    assert alice.get(f"/v1/jobs/{job['id']}").json()["spec"] == job["spec"]


SPEC_ERRORS = [
    ({"method": "ppo"}, "method"),
    ({"train": {"steps": 5, "lr": -1.0}}, "train.lr"),
    ({"train": {"steps": 5, "lrr": 1.0}}, "train.lrr"),
    ({"method_args": {"bta": 0.1}}, "method_args"),
    ({"rewards": [{"type": "bleu"}]}, "rewards.0.type"),
    ({"data": {"train": "ds-doesnotexist"}}, "data.train"),
    ({"data": {"train": "/etc/passwd"}}, "data.train"),
    ({"model": "/srv/models/secret"}, "model"),
    ({"model": "job-unknown"}, "model"),
]


@pytest.mark.parametrize(("change", "field"), SPEC_ERRORS)
def test_bad_spec_is_refused_naming_the_field_and_nothing_stored(
    alice: Api, settings: Settings, queue: RecordingQueue, change: dict, field: str
):
    dataset = alice.dataset(PAIRS)
    response = alice.submit({**dpo_spec(dataset), **change})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert field.split(".")[0] in response.json()["error"]["message"]
    assert job_count(settings) == 0 and queue.sent == []


def test_dataset_of_the_wrong_kind_is_refused(alice: Api, settings: Settings):
    prompts = alice.dataset(PROMPTS)
    response = alice.submit(dpo_spec(prompts))
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "data.train" and "preference" in error["message"]
    assert job_count(settings) == 0


def test_online_reward_field_missing_from_the_dataset_is_refused_at_submit(alice: Api):
    prompts = alice.dataset(PROMPTS)
    spec = {
        "model": "builtin:tiny-llama",
        "method": "grpo",
        "data": {"train": prompts},
        "rewards": [{"type": "exact_match", "field": "solution"}],
    }
    response = alice.submit(spec)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "rewards.0.field"
    spec["rewards"][0]["field"] = "answer"
    assert alice.submit(spec).status_code == 201


def test_python_rewards_need_the_operator(alice: Api):
    spec = {
        "model": "builtin:tiny-llama",
        "method": "grpo",
        "data": {"task": "builtin:arithmetic"},
        "rewards": [{"type": "python", "path": "os:system"}],
    }
    response = alice.submit(spec)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "python_rewards_disabled"


def test_broker_down_still_stores_the_job(alice: Api, settings: Settings, monkeypatch):
    monkeypatch.setattr(alice.client.app.state, "queue", RecordingQueue(reachable=False))
    job = alice.job(dpo_spec(alice.dataset(PAIRS)))
    assert job["status"] == "queued"
    kinds = [e["kind"] for e in alice.get(f"/v1/jobs/{job['id']}/events").json()["data"]]
    assert kinds == ["created", "enqueue_failed"]
    with new_session(settings.database_url) as session:
        assert session.get(Job, job["id"]).enqueued_at is None  # the reconciler's cue


def test_list_filters_and_cursor_pages(alice: Api, bob: Api):
    dataset = alice.dataset(PAIRS)
    made = [alice.job({**dpo_spec(dataset), "name": f"run-{i}"}) for i in range(4)]
    kto = alice.job({**dpo_spec(dataset), "method": "kto", "name": "kto-run"})
    alice.post(f"/v1/jobs/{made[0]['id']}/cancel")
    listed = alice.get("/v1/jobs").json()["data"]
    assert [j["id"] for j in listed] == [kto["id"], *[j["id"] for j in made[::-1]]]
    assert [j["id"] for j in alice.get("/v1/jobs?method=kto").json()["data"]] == [kto["id"]]
    cancelled = alice.get("/v1/jobs?status=cancelled").json()["data"]
    assert [j["id"] for j in cancelled] == [made[0]["id"]]
    assert len(alice.get("/v1/jobs?name=RUN-").json()["data"]) == 4
    page = alice.get("/v1/jobs?limit=2").json()
    assert page["has_more"] and len(page["data"]) == 2
    rest = alice.get(f"/v1/jobs?limit=10&after={page['last_id']}").json()
    assert [j["id"] for j in page["data"] + rest["data"]] == [j["id"] for j in listed]
    assert bob.get("/v1/jobs").json()["data"] == []
    assert bob.get(f"/v1/jobs/{kto['id']}").status_code == 404


def test_cancel_queued_running_and_finished(alice: Api, settings: Settings):
    dataset = alice.dataset(PAIRS)
    queued, running, done = (alice.job(dpo_spec(dataset)) for _ in range(3))
    assert alice.post(f"/v1/jobs/{queued['id']}/cancel").json()["status"] == "cancelled"
    with session_scope(settings.database_url) as session:
        attempt = db_jobs.claim(session, running["id"], "worker-1")
        db_jobs.claim(session, done["id"], "worker-1")
        db_jobs.finish(session, done["id"], 1, "succeeded")
    body = alice.post(f"/v1/jobs/{running['id']}/cancel").json()
    assert body["status"] == "running" and body["cancel_requested"] and attempt == 1
    response = alice.post(f"/v1/jobs/{done['id']}/cancel")
    assert response.status_code == 409 and response.json()["error"]["code"] == "job_finished"


def test_resume_requeues_failed_and_cancelled_jobs_only(
    alice: Api, settings: Settings, queue: RecordingQueue
):
    dataset = alice.dataset(PAIRS)
    job = alice.job(dpo_spec(dataset))
    assert alice.post(f"/v1/jobs/{job['id']}/resume").status_code == 409  # still queued
    with session_scope(settings.database_url) as session:
        attempt = db_jobs.claim(session, job["id"], "w")
        db_jobs.finish(session, job["id"], attempt, "failed", error_code="oom", error_message="x")
    failed = alice.get(f"/v1/jobs/{job['id']}").json()
    assert failed["error"] == {"code": "oom", "message": "x"}
    resumed = alice.post(f"/v1/jobs/{job['id']}/resume").json()
    assert resumed["status"] == "queued" and resumed["error"] is None
    assert queue.sent == [(job["id"], "train"), (job["id"], "train")]
    with new_session(settings.database_url) as session:
        assert session.get(Job, job["id"]).resume is True


def test_events_pages_by_cursor(alice: Api, settings: Settings):
    job = alice.job(dpo_spec(alice.dataset(PAIRS)))
    with session_scope(settings.database_url) as session:
        for i in range(5):
            db_jobs.add_event(session, job["id"], "eval", f"e{i}", step=i)
    first = alice.get(f"/v1/jobs/{job['id']}/events?limit=3").json()
    assert [e["kind"] for e in first["data"]] == ["created", "eval", "eval"] and first["has_more"]
    rest = alice.get(f"/v1/jobs/{job['id']}/events?after={first['last_id']}").json()
    assert [e["message"] for e in rest["data"]] == ["e2", "e3", "e4"] and not rest["has_more"]


def test_event_stream_sends_events_then_ends(alice: Api, settings: Settings):
    job = alice.job(dpo_spec(alice.dataset(PAIRS)))
    with session_scope(settings.database_url) as session:
        db_jobs.add_event(session, job["id"], "started", "go")
        attempt = db_jobs.claim(session, job["id"], "w")
        db_jobs.finish(session, job["id"], attempt, "succeeded")
    with alice.client.stream(
        "GET", f"/v1/jobs/{job['id']}/events/stream", headers=alice.headers
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    assert text.index("event: created") < text.index("event: started") < text.index("event: end")
    first_id = text.split("id: ")[1].split("\n")[0]
    with alice.client.stream(
        "GET",
        f"/v1/jobs/{job['id']}/events/stream",
        headers={**alice.headers, "Last-Event-ID": first_id},
    ) as response:
        resumed = "".join(response.iter_text())
    assert "event: created" not in resumed and "event: started" in resumed


def test_every_endpoint_needs_a_key(client, settings: Settings):
    for path in ("/v1/jobs", "/v1/datasets", "/v1/comparisons", "/v1/evaluations"):
        response = client.get(path)
        assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"
    bad = client.get("/v1/jobs", headers={"Authorization": "Bearer gro-nope"})
    assert bad.status_code == 401
    assert client.get("/healthz").status_code == 200
