"""Server-side maxima and per-owner quotas: every size a spec asks for is bounded by a setting,
refused at submit with 422 naming the key, the limit and the setting; quotas bound what one
owner holds (active jobs, jobs per comparison, storage bytes)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from gro_core.spec import apply_overrides
from server.config import Settings
from tests.server.conftest import PAIRS, Api, dpo_spec, jsonl

# Small maxima, so that a value one over each stays cheap to submit.
LIMITS = {
    "limit_steps": 50,
    "limit_batch_size": 16,
    "limit_num_generations": 8,
    "limit_rollouts_per_step": 64,
    "limit_max_new_tokens": 64,
    "limit_max_length": 512,
    "limit_task_size": 500,
    "limit_eval_num_prompts": 64,
    "limit_num_iterations": 4,
    "limit_grad_accum": 8,
    "limit_epochs": 3,
    "limit_lora_r": 16,
    "limit_checkpoint_keep": 3,
    "limit_rewards": 2,
    "limit_stop_strings": 2,
    "limit_name_chars": 20,
    "limit_nproc_per_node": 2,
    "limit_nnodes": 2,
    "limit_active_jobs": 3,
    "limit_comparison_jobs": 4,
}


@pytest.fixture
def database_url(tmp_path: Path, sqlite_template: Path) -> str:
    """SQLite only: the checks run before any write, the same on every backend."""
    path = tmp_path / "gro.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The API tests' settings (tests/server/conftest.py) with small limits."""
    return settings.model_copy(update=LIMITS)


def online_spec(**overrides: Any) -> dict[str, Any]:
    base = {
        "model": "builtin:tiny-llama",
        "method": "grpo",
        "data": {"task": "builtin:arithmetic"},
        "rollout": {"num_generations": 4},
        "train": {"steps": 5, "batch_size": 4},
        "eval": {"num_prompts": 8},
    }
    return apply_overrides(base, overrides)


# (key, setting, the largest allowed value, what the spec sets to reach it)
BOUNDS: list[tuple[str, str, int, Any]] = [
    ("train.steps", "limit_steps", 50, lambda v: {"train.steps": v}),
    ("train.batch_size", "limit_batch_size", 16, lambda v: {"train.batch_size": v}),
    ("train.num_iterations", "limit_num_iterations", 4, lambda v: {"train.num_iterations": v}),
    ("train.max_length", "limit_max_length", 512, lambda v: {"train.max_length": v}),
    ("train.grad_accum", "limit_grad_accum", 8, lambda v: {"train.grad_accum": v}),
    (
        "rollout.num_generations",
        "limit_num_generations",
        8,
        lambda v: {"rollout": {"num_generations": v}},
    ),
    ("rollout.max_new_tokens", "limit_max_new_tokens", 64, lambda v: {"rollout.max_new_tokens": v}),
    ("data.task_size", "limit_task_size", 500, lambda v: {"data.task_size": v}),
    ("eval.num_prompts", "limit_eval_num_prompts", 64, lambda v: {"eval.num_prompts": v}),
    ("lora.r", "limit_lora_r", 16, lambda v: {"lora": {"r": v}}),
    ("checkpoint.keep", "limit_checkpoint_keep", 3, lambda v: {"checkpoint.keep": v}),
    (
        "resources.nproc_per_node",
        "limit_nproc_per_node",
        2,
        lambda v: {"resources.nproc_per_node": v},
    ),
    ("resources.nnodes", "limit_nnodes", 2, lambda v: {"resources.nnodes": v}),
    ("name", "limit_name_chars", 20, lambda v: {"name": "n" * v}),
    (
        "rewards",
        "limit_rewards",
        2,
        lambda v: {"rewards": [{"type": "contains", "text": "1"}] * v},
    ),
    ("rollout.stop", "limit_stop_strings", 2, lambda v: {"rollout.stop": ["\n"] * v}),
    (
        "rewards.0.batch_size",
        "limit_batch_size",
        16,
        lambda v: {"rewards": [{"type": "reward_model", "model": "org/rm", "batch_size": v}]},
    ),
]


@pytest.mark.parametrize(
    ("key", "setting", "limit", "overrides"), BOUNDS, ids=[b[0] for b in BOUNDS]
)
def test_each_size_is_bounded_by_its_setting(
    alice: Api, key: str, setting: str, limit: int, overrides: Any
):
    over = alice.submit(online_spec(**overrides(limit + 1)))
    assert over.status_code == 422, over.text
    error = over.json()["error"]
    assert error["code"] == "over_limit" and error["field"] == key
    assert f"limit of {limit:,}" in error["message"]
    assert f"GRO_{setting.upper()}" in error["message"]
    at_limit = alice.submit(online_spec(**overrides(limit)))
    assert at_limit.status_code == 201, at_limit.text


def test_sizes_reached_by_products_are_bounded(alice: Api):
    """batch × generations (rollouts a step samples) and steps × batch (the rows a task
    generates when task_size is not set) are refused on the key to change."""
    rollouts = alice.submit(
        online_spec(**{"train.batch_size": 16, "rollout": {"num_generations": 8}})
    )
    assert rollouts.status_code == 422
    assert "GRO_LIMIT_ROLLOUTS_PER_STEP" in rollouts.json()["error"]["message"]
    rows = alice.submit(online_spec(**{"train.steps": 50, "train.batch_size": 16}))
    error = rows.json()["error"]
    assert rows.status_code == 422 and error["field"] == "data.task_size"
    assert "800" in error["message"] and "GRO_LIMIT_TASK_SIZE" in error["message"]


def test_every_problem_is_listed(alice: Api):
    response = alice.submit(online_spec(**{"train.steps": 10**6, "lora": {"r": 10**6}}))
    fields = {p["field"] for p in response.json()["error"]["details"]}
    assert {"train.steps", "lora.r"} <= fields


def test_epochs_are_bounded_by_the_steps_they_make(alice: Api):
    dataset = alice.dataset(PAIRS * 10)  # 80 rows: 10 batches of 8 per epoch
    ok = alice.submit(dpo_spec(dataset, epochs=3, batch_size=8))
    assert ok.status_code == 201, ok.text
    many = alice.submit(dpo_spec(dataset, epochs=3, batch_size=1))  # 240 steps
    error = many.json()["error"]
    assert many.status_code == 422 and error["field"] == "train.epochs"
    assert "240" in error["message"] and "GRO_LIMIT_STEPS" in error["message"]


def test_active_jobs_quota(alice: Api, bob: Api):
    for _ in range(3):
        assert alice.submit(online_spec()).status_code == 201
    refused = alice.submit(online_spec())
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "quota_exceeded"
    assert "GRO_LIMIT_ACTIVE_JOBS" in refused.json()["error"]["message"]
    assert bob.submit(online_spec()).status_code == 201  # per owner
    job = alice.get("/v1/jobs").json()["data"][0]["id"]
    alice.post(f"/v1/jobs/{job}/cancel")
    assert alice.submit(online_spec()).status_code == 201  # a finished job frees its place
    evaluation = {"model": "builtin:tiny-llama", "dataset": "builtin:arithmetic"}
    assert alice.post("/v1/evaluations", json=evaluation).status_code == 422


def test_one_comparison_creates_a_bounded_number_of_jobs(alice: Api):
    variants = [{"label": f"v{i}", "overrides": {}} for i in range(2)]
    body = {"name": "c", "base": online_spec(), "variants": variants, "seeds": [0, 1, 2]}
    response = alice.post("/v1/comparisons", json=body)
    error = response.json()["error"]
    assert response.status_code == 422 and error["field"] == "seeds"
    assert "6 jobs" in error["message"] and "GRO_LIMIT_COMPARISON_JOBS" in error["message"]
    assert alice.get("/v1/jobs").json()["data"] == []
    body["seeds"] = [0]
    assert alice.post("/v1/comparisons", json=body).status_code == 201
    # 2 active already: 2 more would go over the active-jobs quota of 3, and none is created
    again = alice.post("/v1/comparisons", json=body)
    assert again.json()["error"]["code"] == "quota_exceeded"
    assert len(alice.get("/v1/jobs").json()["data"]) == 2


def test_evaluation_sizes_are_bounded(alice: Api):
    body = {"model": "builtin:tiny-llama", "dataset": "builtin:arithmetic", "num_prompts": 65}
    response = alice.post("/v1/evaluations", json=body)
    assert response.status_code == 422 and response.json()["error"]["field"] == "num_prompts"
    body["num_prompts"] = 64
    assert alice.post("/v1/evaluations", json=body).status_code == 201


def test_storage_quota_refuses_an_upload_and_a_job(
    client: Any, keys: dict[str, str], settings: Settings
):
    settings.limit_storage_bytes = 5000
    alice = Api(client, keys["alice"])
    first = alice.upload(jsonl(PAIRS * 8))  # 3,456 bytes
    assert first.status_code == 201, first.text
    second = alice.upload(jsonl(PAIRS * 8))
    error = second.json()["error"]
    assert second.status_code == 422 and error["code"] == "quota_exceeded"
    assert error["field"] == "file" and "GRO_LIMIT_STORAGE_BYTES" in error["message"]
    assert not any((settings.storage_dir / "tmp").iterdir())  # the refused upload is gone
    settings.limit_storage_bytes = first.json()["bytes"]
    job = alice.submit(dpo_spec(first.json()["id"]))
    assert job.status_code == 422 and job.json()["error"]["code"] == "quota_exceeded"


def test_seeds_are_bounded_where_numpy_and_torch_take_them(alice: Api):
    dataset = alice.dataset(PAIRS)
    response = alice.submit(dpo_spec(dataset, seed=2**32))
    assert response.status_code == 422 and response.json()["error"]["field"] == "train.seed"
    assert alice.submit(dpo_spec(dataset, seed=2**31 - 1)).status_code == 201


def test_defaults_fit_one_gpu_machine():
    settings = Settings()
    assert settings.limit_steps == 100_000 and settings.limit_active_jobs == 32
    assert settings.limit_name_chars <= 200  # the width of the name column
