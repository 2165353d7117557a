"""/v1/comparisons: variants × seeds become jobs (all or none) and are summarised over seeds."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from server.config import Settings
from server.db import jobs as db_jobs
from server.db.models import Comparison, Job
from server.db.session import new_session, session_scope
from server.queue import RecordingQueue
from tests.server.conftest import PAIRS, Api, dpo_spec


def request(dataset: str, **extra) -> dict:
    return {
        "name": "dpo-vs-kto",
        "base": dpo_spec(dataset),
        "variants": [
            {"label": "dpo", "overrides": {}},
            {"label": "kto", "overrides": {"method": "kto", "train.lr": 2e-5}},
        ],
        "seeds": [0, 1, 2],
        **extra,
    }


def test_one_job_per_variant_and_seed(alice: Api, queue: RecordingQueue):
    body = alice.post("/v1/comparisons", json=request(alice.dataset(PAIRS))).json()
    jobs = body["jobs"]
    assert [(j["variant"], j["seed"]) for j in jobs] == [
        (v, s) for v in ("dpo", "kto") for s in (0, 1, 2)
    ]
    assert all(j["spec"]["train"]["seed"] == j["seed"] for j in jobs)
    kto = [j for j in jobs if j["variant"] == "kto"]
    assert all(j["method"] == "kto" and j["spec"]["train"]["lr"] == 2e-5 for j in kto)
    assert jobs[0]["name"] == "dpo-vs-kto/dpo/seed0"
    assert sorted(queue.sent) == sorted((j["id"], "train") for j in jobs)
    listed = alice.get(f"/v1/jobs?comparison_id={body['id']}").json()["data"]
    assert len(listed) == 6 and body["status"] == "running"


def test_an_invalid_variant_refuses_everything(alice: Api, settings: Settings):
    bad = request(alice.dataset(PAIRS))
    bad["variants"].append({"label": "broken", "overrides": {"train.lr": -1}})
    response = alice.post("/v1/comparisons", json=bad)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "variants.2.train.lr" and "broken" in error["message"]
    with new_session(settings.database_url) as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 0
        assert session.scalar(select(func.count()).select_from(Comparison)) == 0


def test_duplicate_labels_are_refused(alice: Api):
    bad = request(alice.dataset(PAIRS))
    bad["variants"][1]["label"] = "dpo"
    assert alice.post("/v1/comparisons", json=bad).json()["error"]["code"] == "duplicate_label"


def finish_all(settings: Settings, jobs: list[dict], metric) -> None:
    with session_scope(settings.database_url) as session:
        for job in jobs:
            attempt = db_jobs.claim(session, job["id"], "w")
            value = metric(job["variant"], job["seed"])
            status = "failed" if value is None else "succeeded"
            final = {} if value is None else {"eval/reward": value, "train/lr": 0.0}
            db_jobs.finish(session, job["id"], attempt, status, final_metrics=final)


def test_summary_has_means_cis_and_paired_differences(alice: Api, settings: Settings):
    body = alice.post("/v1/comparisons", json=request(alice.dataset(PAIRS))).json()
    values = {
        ("dpo", 0): 0.5,
        ("dpo", 1): 0.6,
        ("dpo", 2): 0.7,
        ("kto", 0): 0.55,
        ("kto", 1): 0.7,
        ("kto", 2): None,
    }  # kto seed 2 failed
    finish_all(settings, body["jobs"], lambda v, s: values[(v, s)])
    summary = alice.get(f"/v1/comparisons/{body['id']}").json()
    assert summary["status"] == "finished"
    dpo = summary["summary"]["dpo"]["eval/reward"]
    kto = summary["summary"]["kto"]["eval/reward"]
    assert "train/lr" not in summary["summary"]["dpo"]
    assert dpo["values"] == [0.5, 0.6, 0.7] and dpo["n"] == 3
    assert dpo["mean"] == pytest.approx(0.6) and dpo["ci_low"] <= 0.6 <= dpo["ci_high"]
    assert dpo["diff"] is None
    assert kto["n"] == 2 and kto["diff"]["n"] == 2  # paired over the seeds both have
    assert kto["diff"]["mean"] == pytest.approx(((0.55 - 0.5) + (0.7 - 0.6)) / 2)
    again = alice.get(f"/v1/comparisons/{body['id']}").json()
    assert again["summary"] == summary["summary"]  # seeded bootstrap: same numbers


def test_another_owners_comparison_is_not_found(alice: Api, bob: Api, admin: Api):
    body = alice.post("/v1/comparisons", json=request(alice.dataset(PAIRS))).json()
    assert bob.get(f"/v1/comparisons/{body['id']}").status_code == 404
    assert bob.get("/v1/comparisons").json()["data"] == []
    assert admin.get(f"/v1/comparisons/{body['id']}").status_code == 200
