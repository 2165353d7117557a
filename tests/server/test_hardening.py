"""Smaller holes a hostile client or a crash could use: orphaned temporary uploads, signed
links that never expire, model names a worker would retry as hub ids or read from any path,
OPTIONS answering 405 with a wrong Allow, /metrics' errors undocumented."""

from __future__ import annotations

import datetime
import os
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gro_core.models import BUILTIN_MODELS
from gro_core.spec.models import BUILTIN_MODEL_NAMES
from server.config import Settings
from server.main import create_app
from server.queue import RecordingQueue
from server.storage import sign
from tests.server.conftest import PAIRS, Api, dpo_spec
from tests.server.test_outputs import make_checkpoint


def _orphan(tmp: Path, name: str, age_s: float) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / name
    path.write_bytes(b"x" * 1000)
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_orphaned_uploads_are_swept_at_start_and_by_age(settings: Settings, keys: dict):
    tmp = settings.storage_dir / "tmp"
    old = _orphan(tmp, "dead.jsonl", 3600)
    fresh = _orphan(tmp, "in-progress.jsonl", 5)  # another API's upload, still being written
    with TestClient(create_app(settings, RecordingQueue())) as client:
        assert not old.exists() and fresh.exists()
        later = _orphan(tmp, "died-later.parquet", 3600)
        alice = Api(client, keys["alice"])
        assert alice.upload(PAIRS).status_code == 201
        assert not later.exists() and fresh.exists()


def test_a_signed_link_cannot_outlive_the_maximum(alice: Api, settings: Settings):
    job = alice.job(dpo_spec(alice.dataset(PAIRS)))["id"]
    ckpt = make_checkpoint(settings, job, 2)
    client = alice.client

    def link(expires: int) -> int:
        signature = sign(settings.secret_key, ckpt, expires)
        url = f"/v1/checkpoints/{ckpt}/download?expires={expires}&signature={signature}"
        return client.get(url).status_code

    year_3000 = int(datetime.datetime(3000, 1, 1, tzinfo=datetime.UTC).timestamp())
    assert link(year_3000) == 401
    assert link(int(time.time()) + 8 * 24 * 3600) == 401  # past the 7-day default
    assert link(int(time.time()) + 6 * 24 * 3600) == 200


@pytest.mark.parametrize(
    "model",
    ["builtin:huge-llama", "etc", "gpt2", "/srv/models/x", "../models/x", "org/../../etc", "a/b/c"],
)
def test_model_names_a_worker_cannot_load_are_refused_at_submit(alice: Api, model: str):
    dataset = alice.dataset(PAIRS)
    response = alice.submit({**dpo_spec(dataset), "model": model})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "model"
    reward = {"type": "reward_model", "model": model}
    spec = {
        "model": "builtin:tiny-llama",
        "method": "grpo",
        "data": {"task": "builtin:arithmetic"},
        "rewards": [reward],
    }
    assert alice.submit(spec).json()["error"]["field"] == "rewards.0.model"


def test_hub_ids_builtins_and_paths_under_the_roots_are_accepted(
    alice: Api, admin: Api, settings: Settings, tmp_path: Path
):
    dataset = alice.dataset(PAIRS)
    for model in ("Qwen/Qwen2.5-0.5B", "builtin:small-llama", "org-1/model_v2.1"):
        assert alice.submit({**dpo_spec(dataset), "model": model}).status_code == 201, model
    store = tmp_path / "models"
    (store / "m1").mkdir(parents=True)
    outside = tmp_path / "other"
    outside.mkdir()
    assert alice.submit({**dpo_spec(dataset), "model": str(store / "m1")}).status_code == 422
    settings.model_roots = [store]
    assert alice.submit({**dpo_spec(dataset), "model": str(store / "m1")}).status_code == 201
    escape = str(store / ".." / "other")
    assert admin.submit({**dpo_spec(admin.dataset(PAIRS)), "model": escape}).status_code == 422


def test_builtin_names_match_the_builtin_registry():
    assert set(BUILTIN_MODEL_NAMES) == set(BUILTIN_MODELS)


def test_options_lists_every_method_of_the_path(client: TestClient):
    jobs = client.options("/v1/jobs")
    assert jobs.status_code == 204 and jobs.headers["allow"] == "GET, OPTIONS, POST"
    dataset = client.options("/v1/datasets/ds-123")
    assert dataset.headers["allow"] == "DELETE, GET, OPTIONS"
    assert client.options("/v1/nothing-here").status_code == 404


def test_cors_preflight_still_answered_by_cors(settings: Settings):
    settings.cors_origins = ["http://dash.example"]
    with TestClient(create_app(settings, RecordingQueue())) as client:
        headers = {"Origin": "http://dash.example", "Access-Control-Request-Method": "POST"}
        response = client.options("/v1/jobs", headers=headers)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "http://dash.example"


def test_metrics_documents_its_errors(client: TestClient):
    responses = client.get("/openapi.json").json()["paths"]["/metrics"]["get"]["responses"]
    assert {"200", "400", "401", "403"} <= set(responses)
