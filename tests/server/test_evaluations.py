"""/v1/evaluations: validated like jobs, queued on the light queue, completions downloadable
in a form that uploads again as a dataset."""

from __future__ import annotations

import json

from gro_core.evaluation.spec import EvaluationSpec
from server.config import Settings
from server.db import jobs as db_jobs
from server.db import outputs
from server.db.models import Job
from server.db.session import session_scope
from server.queue import RecordingQueue
from tests.server.conftest import PAIRS, PROMPTS, Api


def test_evaluation_of_a_builtin_task_is_queued_on_the_light_queue(
    alice: Api, queue: RecordingQueue
):
    response = alice.post(
        "/v1/evaluations",
        json={"model": "builtin:tiny-llama", "dataset": "builtin:arithmetic", "num_generations": 2},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["id"].startswith("eval-") and body["status"] == "queued"
    assert queue.sent == [(body["id"], "evaluation")]
    assert body["request"]["num_prompts"] == 64
    assert alice.get("/v1/jobs").json()["data"] == []  # evaluations are not training jobs
    assert [e["id"] for e in alice.get("/v1/evaluations").json()["data"]] == [body["id"]]


def test_an_evaluation_is_stored_as_an_evaluation_spec_not_a_training_job(
    alice: Api, settings: Settings
):
    response = alice.post(
        "/v1/evaluations",
        json={"model": "builtin:tiny-llama", "dataset": "builtin:arithmetic", "seed": 3},
    )
    assert response.status_code == 201, response.text
    with session_scope(settings.database_url) as session:
        stored = session.get(Job, response.json()["id"]).spec
    spec = EvaluationSpec.model_validate(stored["evaluation_spec"])
    assert "method" not in stored["evaluation_spec"]  # no training method posing as one
    assert (spec.model, spec.data.task, spec.seed) == (
        "builtin:tiny-llama",
        "builtin:arithmetic",
        3,
    )


def test_bad_evaluations_name_the_field(alice: Api, bob: Api):
    pairs = alice.dataset(PAIRS)
    prompts = alice.dataset(PROMPTS)
    cases = [
        ({"model": "builtin:tiny-llama", "dataset": pairs}, "dataset"),
        ({"model": "builtin:tiny-llama", "dataset": "builtin:reverse-preference"}, "dataset"),
        ({"model": "builtin:tiny-llama", "dataset": prompts}, "rewards"),
        ({"model": "job-nope", "dataset": "builtin:arithmetic"}, "model"),
        (
            {
                "model": "builtin:tiny-llama",
                "dataset": prompts,
                "rewards": [{"type": "exact_match", "field": "missing"}],
            },
            "rewards.0.field",
        ),
        (
            {"model": "builtin:tiny-llama", "dataset": "builtin:arithmetic", "num_generations": 0},
            "num_generations",
        ),
    ]
    for body, field in cases:
        response = alice.post("/v1/evaluations", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"]["field"] == field, body
    foreign = bob.post(
        "/v1/evaluations",
        json={
            "model": "builtin:tiny-llama",
            "dataset": prompts,
            "rewards": [{"type": "exact_match", "field": "answer"}],
        },
    )
    assert foreign.status_code == 422 and foreign.json()["error"]["code"] == "not_found"


def test_completions_download_uploads_again_as_a_dataset(alice: Api, settings: Settings):
    prompts = alice.dataset(PROMPTS)
    body = alice.post(
        "/v1/evaluations",
        json={
            "model": "builtin:tiny-llama",
            "dataset": prompts,
            "rewards": [{"type": "exact_match", "field": "answer"}],
        },
    ).json()
    with session_scope(settings.database_url) as session:
        attempt = db_jobs.claim(session, body["id"], "w")
        rows = [
            {"prompt": r["prompt"], "completion": r["answer"], "reward": 1.0, "answer": r["answer"]}
            for r in PROMPTS[:3]
        ]
        outputs.write_samples(session, body["id"], 0, rows)
        db_jobs.finish(
            session, body["id"], attempt, "succeeded", final_metrics={"eval/reward": 1.0}
        )
    done = alice.get(f"/v1/evaluations/{body['id']}").json()
    assert done["status"] == "succeeded" and done["results"] == {"eval/reward": 1.0}
    download = alice.get(f"/v1/evaluations/{body['id']}/completions.jsonl")
    lines = [json.loads(line) for line in download.text.splitlines()]
    assert lines == rows
    again = alice.upload(download.content, name="completions.jsonl")
    assert again.status_code == 201 and again.json()["kind"] == "sft"


def test_another_owners_evaluation_is_not_found(alice: Api, bob: Api, admin: Api):
    body = alice.post(
        "/v1/evaluations", json={"model": "builtin:tiny-llama", "dataset": "builtin:arithmetic"}
    ).json()
    for path in (
        f"/v1/evaluations/{body['id']}",
        f"/v1/evaluations/{body['id']}/completions.jsonl",
    ):
        assert bob.get(path).status_code == 404
    assert bob.get("/v1/evaluations").json()["data"] == []
    assert admin.get(f"/v1/evaluations/{body['id']}").status_code == 200
    assert alice.get(f"/v1/jobs/{body['id']}").status_code == 404  # not a training job
