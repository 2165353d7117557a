"""The OpenAPI schema documents every endpoint with examples, and a schemathesis run against it
finds no server error (5xx)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from gro_core.spec import JobSpec
from server.config import Settings
from server.db.migrate import upgrade
from server.db.models import SUCCEEDED, Job
from server.db.owners import create_key
from server.db.session import dispose_engine, session_scope
from server.main import create_app
from server.queue import RecordingQueue
from tests.helpers.hub_data import go_offline
from tests.server.conftest import PAIRS, jsonl
from tests.server.test_outputs import make_checkpoint


def test_every_operation_is_documented(client: TestClient):
    schema = client.get("/openapi.json").json()
    operations = [
        (path, method, op) for path, item in schema["paths"].items() for method, op in item.items()
    ]
    assert len(operations) >= 22
    for path, method, op in operations:
        where = f"{method.upper()} {path}"
        assert op.get("summary"), where
        assert any(code.startswith("2") for code in op["responses"]), where
        if path.startswith("/v1/"):
            assert "401" in op["responses"] and op.get("security"), where
    text = json.dumps(schema)
    for example in ("job-01jdx4k2m8a1b2c3d4e5f6g7", "dpo-vs-gro", "builtin:tiny-llama"):
        assert example in text


def test_a_job_spec_body_is_documented_as_gro_cores_job_spec(client: TestClient):
    """/docs shows every key of a spec with its docstring, for a job and a comparison's base."""
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["$ref"] == "#/components/schemas/JobSpec"
    assert body["schema"]["examples"][0]["model"] == "builtin:tiny-llama"
    base = schema["components"]["schemas"]["ComparisonIn"]["properties"]["base"]
    assert base["$ref"] == "#/components/schemas/JobSpec"
    spec = schema["components"]["schemas"]["JobSpec"]
    assert set(JobSpec.model_fields) == set(spec["properties"])
    assert spec["properties"]["model"]["description"] == JobSpec.model_fields["model"].description
    assert "TrainSpec" in schema["components"]["schemas"]


# Cases per operation: enough that unbounded integer parameters draw values past 2**63 (what
# found the SQLite "int too large" 500s), few enough to stay well under two minutes.
EXAMPLES = 60


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """One app on a seeded SQLite database: a dataset and a job, so ids in paths can hit."""
    root: Path = tmp_path_factory.mktemp("schemathesis")
    url = f"sqlite:///{root / 'gro.db'}"
    upgrade(url)
    with session_scope(url) as session:
        key = create_key(session, "fuzzer", admin=True)
    settings = Settings(
        environment="test",
        secret_key="fuzz-secret-123",
        database_url=url,
        storage_dir=root / "storage",
        max_upload_bytes=1 << 20,
    )
    app = create_app(settings, RecordingQueue())
    headers = {"Authorization": f"Bearer {key}"}
    with TestClient(app, headers=headers) as client:
        ids = _seed(client, settings)
    with pytest.MonkeyPatch.context() as patch:
        go_offline(patch, root / "hf-cache")  # fuzzed POST /v1/datasets/hub names stay local
        yield app, headers, ids
    dispose_engine(url)


def _seed(client: TestClient, settings: Settings) -> dict[str, str]:
    """One resource of each kind, so that fuzzed requests reach past the 404 of an unknown id
    into the code that reads their parameters (where the huge-integer 500s were)."""
    dataset = client.post("/v1/datasets", files={"file": ("p.jsonl", jsonl(PAIRS))}).json()["id"]
    spec = {"model": "builtin:tiny-llama", "method": "dpo", "data": {"train": dataset}}
    job = client.post("/v1/jobs", json=spec).json()["id"]
    with session_scope(settings.database_url) as session:
        # Succeeded: its event stream ends, and no fuzzed cancel or resume can restart it.
        session.get(Job, job).status = SUCCEEDED
    comparison = client.post(
        "/v1/comparisons",
        json={"name": "c", "base": spec, "variants": [{"label": "a"}], "seeds": [0]},
    ).json()["id"]
    evaluation = client.post(
        "/v1/evaluations", json={"model": "builtin:tiny-llama", "dataset": "builtin:arithmetic"}
    ).json()["id"]
    return {
        "job_id": job,
        "dataset_id": dataset,
        "comparison_id": comparison,
        "evaluation_id": evaluation,
        "checkpoint_id": make_checkpoint(settings, job, 1),
    }


def _server_errors(
    operation: schemathesis.APIOperation,
    headers: dict[str, str],
    ids: dict[str, str],
    statuses: list[int],
) -> list[str]:
    """Cases of one operation that got a 5xx (hypothesis draws them from the schema). Every
    other case uses the seeded resources' ids in its path; half keeps the drawn ones."""
    found: list[str] = []

    @given(operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        if case.path_parameters and len(statuses) % 2 == 0:
            for name in case.path_parameters:
                case.path_parameters[name] = ids.get(name, case.path_parameters[name])
        response = case.call(headers=headers)
        statuses.append(response.status_code)
        if response.status_code >= 500:
            found.append(f"{case.method} {case.formatted_path}: {response.status_code}")

    check()
    return found


@pytest.mark.slow
def test_schemathesis_finds_no_server_error(live: tuple):
    # The schemathesis pytest plugin does not load under this pytest; its Python API does
    # the same work: generate cases from the schema, call the app, look at the answers.
    app, headers, ids = live
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 22
    statuses: list[int] = []
    errors = [e for op in operations for e in _server_errors(op, headers, ids, statuses)]
    assert errors == []
    # Not vacuous: many calls, and some got past validation to a 2xx.
    assert len(statuses) >= 10 * len(operations)
    assert sum(200 <= s < 300 for s in statuses) >= len(operations)
