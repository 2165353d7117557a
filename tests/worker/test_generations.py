"""Playground generations run by the worker: real completions of builtin:tiny-llama and of a
trained checkpoint, the checkpoint's completion scored by its job's reward."""

from __future__ import annotations

from server.config import Settings
from tests.server.conftest import Api
from worker.runner import SKIPPED, run_generation_job, run_train_job
from worker.supervise import time_limit


def tiny_sft(steps: int = 2) -> dict:
    return {
        "model": "builtin:tiny-llama",
        "method": "sft",
        "data": {"task": "builtin:reverse-sft"},
        "train": {"steps": steps, "batch_size": 4, "lr": 1e-3, "warmup_steps": 0},
        "eval": {"every": 0},
        "checkpoint": {"every": steps, "keep": 1},
    }


def test_a_generation_completes_each_model_and_scores_the_one_with_a_reward(
    alice: Api, settings: Settings
):
    trained = alice.job(tiny_sft())
    assert run_train_job(settings, trained["id"], "w1") == "succeeded"
    (checkpoint,) = alice.get(f"/v1/jobs/{trained['id']}/checkpoints").json()["data"]
    body = {
        "checkpoints": [checkpoint["id"], "builtin:tiny-llama", trained["id"]],
        "prompt": "rev abc=",
        "fields": {"answer": "cba"},
        "sampling": {"temperature": 0.8, "top_p": 0.9, "max_new_tokens": 6, "seed": 3},
    }
    created = alice.post("/v1/generations", json=body).json()
    assert run_generation_job(settings, created["id"], "w1") == "succeeded"
    done = alice.get(f"/v1/generations/{created['id']}").json()
    assert done["status"] == "succeeded" and done["finished_at"] is not None
    by_ckpt, base, by_job = done["completions"]
    assert [c["checkpoint"] for c in done["completions"]] == body["checkpoints"]
    for c in done["completions"]:
        assert c["error"] is None and isinstance(c["completion"], str)
        assert 1 <= c["tokens"] <= 6 and c["finish_reason"] in ("stop", "length")
    assert by_ckpt["reward"] in (0.0, 1.0)  # the task's exact match on the answer
    assert base["reward"] is None and base["reward_note"] is None  # a plain model: no reward
    # The job id names its last checkpoint: the same weights, seed and prompt, the same text.
    assert by_job["completion"] == by_ckpt["completion"]
    assert run_generation_job(settings, created["id"], "w2") == SKIPPED


def test_without_the_fields_a_reward_reads_the_completion_says_why_it_has_no_reward(
    alice: Api, settings: Settings
):
    trained = alice.job(tiny_sft())
    assert run_train_job(settings, trained["id"], "w1") == "succeeded"
    messages = [{"role": "user", "content": "rev ab="}]
    body = {"checkpoints": [trained["id"]], "messages": messages, "sampling": {"temperature": 0}}
    created = alice.post("/v1/generations", json=body).json()
    assert run_generation_job(settings, created["id"], "w1") == "succeeded"
    (only,) = alice.get(f"/v1/generations/{created['id']}").json()["completions"]
    assert only["completion"] is not None and only["reward"] is None
    assert "answer" in only["reward_note"]


def test_a_generation_has_its_own_short_time_limit(settings: Settings):
    short = settings.model_copy(update={"generation_time_limit_s": 30.0})
    assert time_limit(short, "generation") == (30.0, "GRO_GENERATION_TIME_LIMIT_S")
    assert time_limit(short, "train") is None
    both = short.model_copy(update={"job_time_limit_s": 10.0})
    assert time_limit(both, "generation") == (10.0, "GRO_JOB_TIME_LIMIT_S")


def test_a_generation_past_its_time_limit_fails_naming_the_variable(alice: Api, settings: Settings):
    body = {"checkpoints": ["builtin:tiny-llama"], "prompt": "rev abc="}
    created = alice.post("/v1/generations", json=body).json()
    short = settings.model_copy(update={"generation_time_limit_s": 0.01})
    assert run_generation_job(short, created["id"], "w1") == "failed"
    done = alice.get(f"/v1/generations/{created['id']}").json()
    assert done["error"]["code"] == "time_limit"
    assert "GRO_GENERATION_TIME_LIMIT_S" in done["error"]["message"]


def test_a_running_job_is_not_waited_for_its_column_says_to_pick_a_checkpoint(
    alice: Api, settings: Settings
):
    queued = alice.job(tiny_sft())  # never run: it stays queued
    body = {"checkpoints": [queued["id"], "builtin:tiny-llama"], "prompt": "rev ab="}
    created = alice.post("/v1/generations", json=body).json()
    assert run_generation_job(settings, created["id"], "w1") == "succeeded"
    waiting, base = alice.get(f"/v1/generations/{created['id']}").json()["completions"]
    assert "has not finished" in waiting["error"] and waiting["completion"] is None
    assert base["error"] is None and base["completion"] is not None
