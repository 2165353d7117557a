"""Acceptance: a `reinforcement` job with a string_check grader, created through the official
openai SDK, raises held-out greedy reward on the builtin reverse task.

The same recipe as tests/gro_core/test_online_learning.py, every step through the OpenAI
surface in OpenAI's chat format: a supervised job imitates a sloppy demonstrator (the word
reversed 40% of the time, copied otherwise), then a reinforcement job starts from its
`fine_tuned_model`, graded by `string_check` against each row's `answer`, and its own step-0
and final evaluations on the validation file's 256 held-out prompts are compared.
"""

from __future__ import annotations

import json

import openai
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from gro_core.tasks import generate, reverse_copy_demonstrations
from server.config import Settings
from server.db.models import Metric
from server.db.session import new_session
from tests.server.openai_sdk import STRING_CHECK, jsonl_file, sdk
from worker.runner import run_train_job

pytestmark = pytest.mark.slow

MODEL = "builtin:tiny-llama"
WARMUP_STEPS, WARMUP_BATCH = 250, 32
ONLINE_STEPS, ONLINE_BATCH = 100, 16
MIN_GAIN = 0.15  # as the core acceptance test: several times the noise of 256 greedy answers
# OpenAI draws a job's seed when the body has none (so does gro's surface): without one the
# recipe ran at a new seed each time and CI once saw +0.07.
SEED = 0


def user(content: str) -> dict[str, str]:
    return {"role": "user", "content": content}


def upload(client: openai.OpenAI, rows: list[dict], name: str) -> str:
    return client.files.create(file=jsonl_file(rows, name), purpose="fine-tune").id


def eval_reward(settings: Settings, job_id: str) -> dict[int, float]:
    with new_session(settings.database_url) as session:
        query = select(Metric).where(Metric.job_id == job_id, Metric.name == "eval/reward")
        return {m.step: m.value for m in session.scalars(query)}


def warm_up(client: openai.OpenAI, settings: Settings) -> str:
    """A supervised job on sloppy demonstrations; its fine_tuned_model."""
    demos = reverse_copy_demonstrations(WARMUP_STEPS * WARMUP_BATCH, seed=0, reversed_share=0.4)
    rows = [
        {"messages": [user(d["prompt"]), {"role": "assistant", "content": d["completion"]}]}
        for d in demos
    ]
    job = client.fine_tuning.jobs.create(
        model=MODEL,
        training_file=upload(client, rows, "demos.jsonl"),
        seed=SEED,
        hyperparameters={
            "batch_size": WARMUP_BATCH,
            "n_epochs": 1,
            "learning_rate_multiplier": 100,
        },
        extra_body={"gro": {"spec": {"train": {"warmup_steps": 20}, "eval": {"every": 0}}}},
    )
    run_train_job(settings, job.id, "w0")
    done = client.fine_tuning.jobs.retrieve(job.id)
    assert done.status == "succeeded", done.error
    return done.fine_tuned_model


def test_a_string_check_reinforcement_job_learns_reverse(
    client: TestClient, keys: dict[str, str], settings: Settings
):
    alice = sdk(client, keys["alice"])
    start = warm_up(alice, settings)
    train = generate("reverse", ONLINE_STEPS * ONLINE_BATCH, seed=0, split="train")
    held_out = generate("reverse", 256, seed=0, split="eval")

    def rft(rows: list[dict]) -> list[dict]:
        return [{"messages": [user(r["prompt"])], "answer": r["answer"]} for r in rows]

    job = alice.fine_tuning.jobs.create(
        model=start,
        training_file=upload(alice, rft(train), "prompts.jsonl"),
        seed=SEED,
        validation_file=upload(alice, rft(held_out), "held_out.jsonl"),
        method={
            "type": "reinforcement",
            "reinforcement": {
                "grader": STRING_CHECK,
                "hyperparameters": {
                    "batch_size": ONLINE_BATCH,
                    "n_epochs": 1,
                    "learning_rate_multiplier": 30,
                    "eval_interval": ONLINE_STEPS,
                    "eval_samples": 256,
                },
            },
        },
        extra_body={"gro": {"spec": {"rollout": {"max_new_tokens": 8}}}},
    )
    assert job.method.reinforcement.hyperparameters.n_epochs == 1
    run_train_job(settings, job.id, "w1")
    done = alice.fine_tuning.jobs.retrieve(job.id)
    assert done.status == "succeeded", done.error
    rewards = eval_reward(settings, job.id)
    assert sorted(rewards) == [0, ONLINE_STEPS]
    print(json.dumps({"held_out_greedy_reward": rewards}))
    assert rewards[ONLINE_STEPS] >= rewards[0] + MIN_GAIN
