"""GET /v1/comparisons/{id}/frontier: reward at matched KL, against interpolation done by hand."""

from __future__ import annotations

import pytest

from server.config import Settings
from server.db import jobs as db_jobs
from server.db.outputs import write_metrics
from server.db.session import session_scope
from tests.server.conftest import PAIRS, Api
from tests.server.test_comparisons import request

# (variant, seed) -> evaluations as (step, KL, reward); None: the job failed.
RUNS = {
    ("dpo", 0): [(0, 0.0, 0.0), (10, 0.4, 0.2), (20, 0.8, 0.4)],
    ("dpo", 1): [(0, 0.0, 0.1), (10, 0.4, 0.3), (20, 0.8, 0.5)],
    ("dpo", 2): [(0, 0.0, 0.2), (10, 0.4, 0.4), (20, 0.8, 0.6)],
    # KL rises to 0.5, falls to 0.3, rises to 1.0: read at its first crossing
    ("kto", 0): [(0, 0.0, 0.0), (10, 0.5, 0.5), (20, 0.3, 0.1), (30, 1.0, 0.9)],
    ("kto", 1): [(0, 0.0, 0.3), (10, 0.4, 0.7)],  # never reaches 0.6
    ("kto", 2): None,
}


@pytest.fixture
def comparison(alice: Api, settings: Settings) -> str:
    body = alice.post("/v1/comparisons", json=request(alice.dataset(PAIRS))).json()
    with session_scope(settings.database_url) as session:
        for job in body["jobs"]:
            attempt = db_jobs.claim(session, job["id"], "w")
            runs = RUNS[(job["variant"], job["seed"])]
            points = [
                p
                for s, kl, r in runs or []
                for p in ((s, "eval/kl_ref", kl), (s, "eval/reward", r))
            ]
            points.append((5, "train/loss", 1.0))  # not an evaluation: ignored
            write_metrics(session, job["id"], points)
            status = "failed" if runs is None else "succeeded"
            db_jobs.finish(session, job["id"], attempt, status, final_metrics={})
    return body["id"]


def test_each_variant_is_read_at_the_requested_kl(alice: Api, comparison: str):
    body = alice.get(f"/v1/comparisons/{comparison}/frontier?at_kl=0.6,0.2").json()
    table = body["table"]
    assert (table["at_kl"], table["baseline"]) == ([0.2, 0.6], "dpo")
    dpo, kto = table["variants"]
    assert (dpo["variant"], dpo["runs"], kto["runs"]) == ("dpo", 3, 2)  # the failed job is left out
    low, high = dpo["at_kl"]
    assert [r["reward"] for r in low["runs"]] == pytest.approx([0.1, 0.2, 0.3])
    assert [r["reward"] for r in high["runs"]] == pytest.approx([0.3, 0.4, 0.5])
    assert low["reward"]["mean"] == pytest.approx(0.2) and low["diff"] is None
    low, high = kto["at_kl"]
    # at 0.2: seed 0 0.2 (first segment, 0.4 of 0 -> 0.5), seed 1 0.3 + 0.5·0.4 = 0.5
    assert [r["reward"] for r in low["runs"]] == pytest.approx([0.2, 0.5])
    assert low["reward"]["mean"] == pytest.approx(0.35) and low["reached"] == 2
    assert low["diff"]["mean"] == pytest.approx(((0.2 - 0.1) + (0.5 - 0.2)) / 2)
    # at 0.6: seed 0 on its last segment (0.3 -> 1.0, 3/7 of the way), seed 1 not reached
    first_crossing = 0.1 + 3 / 7 * 0.8
    assert high["runs"][0]["reward"] == pytest.approx(first_crossing)
    assert high["runs"][1] == {"seed": 1, "reward": None, "reached": False, "max_kl": 0.4}
    assert (high["reached"], high["reward"]["n"], high["diff"]["n"]) == (1, 1, 1)
    assert high["diff"]["mean"] == pytest.approx(first_crossing - 0.3)


def test_the_default_kl_values_are_reached_by_every_run(alice: Api, comparison: str):
    body = alice.get(f"/v1/comparisons/{comparison}/frontier").json()
    assert body["table"]["at_kl"] == pytest.approx([0.1, 0.2, 0.3, 0.4])
    assert all(p["reached"] == v["runs"] for v in body["table"]["variants"] for p in v["at_kl"])


def test_the_line_and_the_curves_cover_every_run(alice: Api, comparison: str):
    body = alice.get(f"/v1/comparisons/{comparison}/frontier?baseline=kto").json()
    line = body["line"]
    assert line["at_kl"] == pytest.approx([i * 0.05 for i in range(21)])  # up to KL 1.0
    assert line["baseline"] is None and all(
        p["diff"] is None for v in line["variants"] for p in v["at_kl"]
    )
    assert [(c["variant"], c["seed"], c["kl"]) for c in body["curves"]][3:] == [
        ("kto", 0, [0.0, 0.5, 0.3, 1.0]),
        ("kto", 1, [0.0, 0.4]),
    ]
    dpo = body["table"]["variants"][0]["at_kl"][0]
    assert body["table"]["baseline"] == "kto" and dpo["diff"] is not None


@pytest.mark.parametrize(
    ("query", "field", "words"),
    [
        ("at_kl=abc", "at_kl", "not a number"),
        ("at_kl=0.1,-1", "at_kl", ">= 0"),
        ("at_kl=inf", "at_kl", "finite"),
        ("at_kl=nan", "at_kl", "finite"),
        ("at_kl=0.1,", "at_kl", "not a number"),
        ("at_kl=" + ",".join(["0.1"] * 21), "at_kl", "at most 20"),
        ("baseline=nope", "baseline", "'nope' is not a variant"),
    ],
)
def test_bad_parameters_are_refused_naming_them(
    alice: Api, comparison: str, query: str, field: str, words: str
):
    response = alice.get(f"/v1/comparisons/{comparison}/frontier?{query}")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == field and error["param"] == field and words in error["message"]


def test_another_owners_frontier_is_not_found(bob: Api, comparison: str):
    assert bob.get(f"/v1/comparisons/{comparison}/frontier").status_code == 404


def test_the_frontier_is_documented(alice: Api):
    schema = alice.get("/openapi.json").json()
    op = schema["paths"]["/v1/comparisons/{comparison_id}/frontier"]["get"]
    params = {p["name"]: p for p in op["parameters"]}
    assert {"at_kl", "baseline", "kl_metric", "reward_metric"} <= params.keys()
    assert "at most 20" in params["at_kl"]["description"]
    assert "first crosses" in op["description"]
