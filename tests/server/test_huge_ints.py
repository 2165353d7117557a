"""Integers no 64-bit column holds are 422 wherever a client can send one (query, header, body),
never a 500 from the driver, and never a stream that answers 200 and then breaks."""

from __future__ import annotations

import pytest

from tests.server.conftest import PAIRS, Api, dpo_spec

HUGE = 2**63  # one past the largest BIGINT / SQLite INTEGER
INT_MAX = 2**31 - 1  # the largest value of a PostgreSQL INTEGER column (steps, event ids)


@pytest.fixture
def job(alice: Api) -> str:
    return alice.job(dpo_spec(alice.dataset(PAIRS)))["id"]


QUERIES = [
    ("/v1/jobs/{job}/samples", "step"),
    ("/v1/jobs/{job}/events", "after"),
    ("/v1/jobs/{job}/events/stream", "after"),
    ("/v1/jobs/{job}/metrics", "min_step"),
]


@pytest.mark.parametrize(("path", "param"), QUERIES, ids=[f"{p}?{q}" for p, q in QUERIES])
@pytest.mark.parametrize("value", [INT_MAX + 1, HUGE, 10**30, -HUGE - 1])
def test_huge_query_integers_are_422(alice: Api, job: str, path: str, param: str, value: int):
    response = alice.get(path.format(job=job), params={param: value})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == param


def test_the_largest_integer_is_answered(alice: Api, job: str):
    for path, param in QUERIES[:2] + QUERIES[3:]:
        response = alice.get(path.format(job=job), params={param: INT_MAX})
        assert response.status_code == 200, (path, response.text)


def test_dataset_rows_offset(alice: Api):
    dataset = alice.dataset(PAIRS)
    response = alice.get(f"/v1/datasets/{dataset}/rows", params={"offset": HUGE})
    assert response.status_code == 422


@pytest.mark.parametrize("header", [str(INT_MAX + 1), "9" * 5000, "0" * 30 + str(HUGE)])
def test_a_huge_last_event_id_is_refused_before_the_stream_starts(
    alice: Api, job: str, header: str
):
    response = alice.get(f"/v1/jobs/{job}/events/stream", headers={"Last-Event-ID": header})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "Last-Event-ID"


@pytest.mark.parametrize("header", ["abc", "²".encode("latin-1"), ""])
def test_a_last_event_id_that_is_no_id_is_ignored(alice: Api, job: str, header: str | bytes):
    alice.post(f"/v1/jobs/{job}/cancel")  # finished: the stream ends after its events
    response = alice.get(f"/v1/jobs/{job}/events/stream", headers={"Last-Event-ID": header})
    assert response.status_code == 200
    assert "event: created" in response.text and "event: end" in response.text


def test_a_valid_last_event_id_resumes_the_stream(alice: Api, job: str):
    alice.post(f"/v1/jobs/{job}/cancel")
    first = alice.get(f"/v1/jobs/{job}/events").json()["data"][0]["id"]
    response = alice.get(f"/v1/jobs/{job}/events/stream", headers={"Last-Event-ID": str(first)})
    assert response.status_code == 200
    assert "event: created" not in response.text and "event: cancelled" in response.text


BODIES = [
    ({"train": {"steps": HUGE}}, "train.steps"),
    ({"train": {"steps": 5, "warmup_steps": HUGE}}, "train.warmup_steps"),
    ({"train": {"steps": 5, "seed": HUGE}}, "train.seed"),
    ({"method_args": {"beta": HUGE}}, "method_args.beta"),
    ({"checkpoint": {"every": -HUGE - 1}}, "checkpoint.every"),
]


@pytest.mark.parametrize(("extra", "field"), BODIES, ids=[b[1] for b in BODIES])
def test_huge_body_integers_are_422(alice: Api, extra: dict, field: str):
    spec = {**dpo_spec(alice.dataset(PAIRS)), **extra}
    response = alice.submit(spec)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field


def test_huge_comparison_seeds_are_422(alice: Api):
    body = {
        "name": "c",
        "base": dpo_spec(alice.dataset(PAIRS)),
        "variants": [{"label": "a", "overrides": {"train.warmup_steps": HUGE}}],
        "seeds": [0],
    }
    override = alice.post("/v1/comparisons", json=body)
    assert override.status_code == 422
    assert override.json()["error"]["field"] == "variants.0.train.warmup_steps"
    body["variants"] = [{"label": "a", "overrides": {}}]
    body["seeds"] = [HUGE]
    assert alice.post("/v1/comparisons", json=body).status_code == 422


def test_huge_evaluation_seed_is_422(alice: Api):
    body = {"model": "builtin:tiny-llama", "dataset": "builtin:arithmetic", "seed": HUGE}
    assert alice.post("/v1/evaluations", json=body).status_code == 422
