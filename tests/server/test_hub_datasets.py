"""POST /v1/datasets/hub: a Hugging Face dataset, read offline from a local directory under the
operator's allowed roots, validated by row and kept as an ordinary dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from gro_core.evaluation.spec import EvaluationSpec
from server.config import Settings
from server.db.models import Job, JobDataset
from server.db.session import session_scope
from tests.helpers.hub_data import go_offline, write_hub_dir
from tests.server.conftest import Api, dpo_spec
from tests.server.openai_sdk import STRING_CHECK, sdk
from tests.server.test_datasets import stored

PAIRS = [{"q": f"{i}+{i}=", "good": str(2 * i), "bad": "0", "n": i} for i in range(6)]
COLUMNS = {"prompt": "q", "chosen": "good", "rejected": "bad"}


@pytest.fixture
def roots(tmp_path: Path) -> Path:
    return tmp_path / "datasets"


@pytest.fixture
def settings(settings: Settings, roots: Path) -> Settings:
    """The API tests' settings (tests/server/conftest.py), Hub data read only under `roots`."""
    return settings.model_copy(update={"limit_dataset_rows": 10, "hub_dataset_roots": [roots]})


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    go_offline(monkeypatch, tmp_path / "hf-cache")


def register(api: Api, name: str | Path, **keys) -> dict:
    return api.post("/v1/datasets/hub", json={"name": str(name)} | keys)


def test_a_hub_dataset_becomes_a_stored_dataset_jobs_can_use(alice: Api, roots: Path, settings):
    root = write_hub_dir(roots / "pairs", {"main": {"train": PAIRS, "test": PAIRS[:2]}})
    response = register(alice, root, config="main", split="test", columns=COLUMNS)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["kind"], body["rows"], body["format"]) == ("preference", 2, "jsonl")
    assert body["filename"] == f"hf:{root}[main]:test"
    rows = alice.get(f"/v1/datasets/{body['id']}/rows").json()["data"]
    assert rows[1] == {"prompt": "1+1=", "chosen": "2", "rejected": "0", "n": 1}
    assert alice.submit(dpo_spec(body["id"])).status_code == 201


def test_a_bad_row_is_refused_by_row_and_field_and_nothing_is_kept(
    alice: Api, roots: Path, settings: Settings
) -> None:
    bad = [*PAIRS[:3], {"q": "x", "good": "", "bad": "0", "n": 9}]
    root = write_hub_dir(roots / "bad", {"default": {"train": bad}})
    response = register(alice, root, columns=COLUMNS)
    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["line"], error["field"]) == (4, "chosen")
    assert error["message"].startswith("row 4, field chosen: ")
    assert stored(settings) == (0, [])


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"columns": {"prompt": "question"}}, "columns.prompt", "unknown_column"),
        ({"split": "validation"}, "split", "hub_unavailable"),
        ({"split": "a b"}, "split", "invalid_request"),
        ({"name": "not an id"}, "name", "invalid_request"),
    ],
)
def test_unusable_requests_name_the_key(alice: Api, roots: Path, body, field, code) -> None:
    root = write_hub_dir(roots / "pairs", {"default": {"train": PAIRS}})
    error = (
        register(alice, root, **body).json()["error"]
        if "name" not in body
        else (alice.post("/v1/datasets/hub", json=body).json()["error"])
    )
    assert (error["field"], error["code"]) == (field, code), error


def test_server_limits_and_roots_bound_what_is_read(
    alice: Api, roots: Path, tmp_path: Path, settings: Settings
) -> None:
    root = write_hub_dir(roots / "big", {"default": {"train": PAIRS * 2}})  # 12 > 10 rows
    error = register(alice, root, columns=COLUMNS).json()["error"]
    assert error["code"] == "too_many_rows"
    outside = write_hub_dir(tmp_path / "elsewhere", {"default": {"train": PAIRS}})
    error = register(alice, outside, columns=COLUMNS).json()["error"]
    assert (error["code"], error["field"]) == ("path_not_allowed", "name")
    escape = register(alice, f"{roots}/../elsewhere", columns=COLUMNS).json()["error"]
    assert escape["code"] == "path_not_allowed"
    assert stored(settings) == (0, [])


def test_a_job_spec_naming_a_hub_dataset_is_sent_to_register_it(alice: Api) -> None:
    spec = dpo_spec("ds-unused") | {"data": {"train": "hf:org/pairs"}}
    response = alice.submit(spec)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "data.train" and "/v1/datasets/hub" in error["message"]


SUMS = [{"question": f"{i}+{i}=", "solution": str(2 * i)} for i in range(6)]
PROMPT_COLUMNS = {"prompt": "question", "answer": "solution"}
EXACT = [{"type": "exact_match", "field": "answer"}]


def hub_ids(api: Api, roots: Path) -> tuple[str, str]:
    """(a prompt dataset, a preference dataset) registered from local Hub directories."""
    sums = write_hub_dir(roots / "sums", {"default": {"train": SUMS}})
    pairs = write_hub_dir(roots / "pairs", {"default": {"train": PAIRS}})
    prompts = register(api, sums, columns=PROMPT_COLUMNS)
    preference = register(api, pairs, columns=COLUMNS)
    assert prompts.status_code == preference.status_code == 201, (prompts.text, preference.text)
    assert (prompts.json()["kind"], preference.json()["kind"]) == ("prompt", "preference")
    return prompts.json()["id"], preference.json()["id"]


def evaluate(api: Api, dataset: str) -> Any:
    body = {"model": "builtin:tiny-llama", "dataset": dataset, "rewards": EXACT}
    return api.post("/v1/evaluations", json=body)


def test_a_hub_prompt_dataset_is_what_an_evaluation_reads(
    alice: Api, roots: Path, settings: Settings
) -> None:
    prompts, _ = hub_ids(alice, roots)
    response = evaluate(alice, prompts)
    assert response.status_code == 201, response.text
    with session_scope(settings.database_url) as session:
        job = session.get(Job, response.json()["id"])
        assert job is not None
        spec = EvaluationSpec.model_validate(job.spec["evaluation_spec"])
        links = session.scalars(select(JobDataset.dataset_id).where(JobDataset.job_id == job.id))
        assert list(links) == [prompts]  # in use: it cannot be deleted under the evaluation
    assert spec.data.eval == prompts
    assert spec.rewards[0].field == "answer"  # the mapped column, under gro's name


def test_a_hub_dataset_of_another_kind_is_refused_for_an_evaluation(
    alice: Api, roots: Path
) -> None:
    _, preference = hub_ids(alice, roots)
    response = evaluate(alice, preference)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "dataset"
    assert "preference" in error["message"] and "prompt" in error["message"]


def test_hub_datasets_are_openai_training_and_validation_files(
    alice: Api, client: TestClient, keys: dict[str, str], roots: Path
) -> None:
    prompts, preference = hub_ids(alice, roots)
    openai_client = sdk(client, keys["alice"])
    listed = {f.id for f in openai_client.files.list()}
    assert {prompts, preference} <= listed
    job = openai_client.fine_tuning.jobs.create(
        model="builtin:tiny-llama",
        training_file=preference,
        validation_file=preference,
        method={"type": "dpo"},
    )
    assert (job.training_file, job.validation_file) == (preference, preference)
    spec = alice.get(f"/v1/jobs/{job.id}").json()["spec"]
    assert (spec["data"]["train"], spec["data"]["eval"]) == (preference, preference)
    rft = openai_client.fine_tuning.jobs.create(
        model="builtin:tiny-llama",
        training_file=prompts,
        validation_file=prompts,
        method={"type": "reinforcement", "reinforcement": {"grader": STRING_CHECK}},
    )
    assert alice.get(f"/v1/jobs/{rft.id}").json()["spec"]["data"]["train"] == prompts


@pytest.mark.parametrize("param", ["training_file", "validation_file"])
def test_a_hub_dataset_of_the_wrong_kind_is_refused_naming_the_openai_param(
    alice: Api, client: TestClient, keys: dict[str, str], roots: Path, param: str
) -> None:
    prompts, preference = hub_ids(alice, roots)
    files = {"training_file": preference, "validation_file": preference} | {param: prompts}
    with pytest.raises(openai.BadRequestError) as info:
        sdk(client, keys["alice"]).fine_tuning.jobs.create(
            model="builtin:tiny-llama", method={"type": "dpo"}, **files
        )
    assert info.value.param == param
    assert "prompt" in info.value.message and "preference" in info.value.message


@pytest.mark.parametrize("source", ["train", "task"])
def test_gro_jobs_refuse_held_out_rows_of_another_kind_on_data_eval(
    alice: Api, roots: Path, source: str
) -> None:
    prompts, preference = hub_ids(alice, roots)
    if source == "train":
        spec = dpo_spec(preference) | {"data": {"train": preference, "eval": prompts}}
    else:  # a prompt task: held-out rows must be prompts
        spec = dpo_spec(preference) | {
            "method": "grpo",
            "data": {"task": "builtin:arithmetic", "eval": preference},
            "rewards": EXACT,
        }
    response = alice.submit(spec)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == "data.eval" and "rows" in error["message"], error


def test_a_hub_name_where_a_registered_id_belongs_says_how_to_register_it(
    alice: Api, client: TestClient, keys: dict[str, str]
) -> None:
    error = evaluate(alice, "hf:org/sums").json()["error"]
    assert error["field"] == "dataset" and "/v1/datasets/hub" in error["message"], error
    with pytest.raises(openai.BadRequestError) as info:
        sdk(client, keys["alice"]).fine_tuning.jobs.create(
            model="builtin:tiny-llama", training_file="hf:org/pairs", method={"type": "dpo"}
        )
    assert info.value.param == "training_file" and "/v1/datasets/hub" in info.value.message
