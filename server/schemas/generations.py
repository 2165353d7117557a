"""Generations: the playground's prompt (or chat) completed by up to four models side by side."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gro_core.spec import MAX_SEED
from server.schemas.jobs import JobError

MAX_MODELS = 4
"""Models one generation compares: the playground shows them in one row."""


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str


class SamplingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(1.0, ge=0.0, le=10.0, description="0: greedy")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_new_tokens: int = Field(64, ge=1, description="at most GRO_LIMIT_MAX_NEW_TOKENS")
    seed: int = Field(0, ge=0, le=MAX_SEED)


class GenerationIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "checkpoints": ["ckpt-01jdx4k2m8a1b2c3d4e5f6g7", "builtin:tiny-llama"],
                    "prompt": "Reverse the letters: abc",
                    "fields": {"answer": "cba"},
                    "sampling": {"temperature": 0.7, "max_new_tokens": 32, "seed": 1},
                }
            ]
        },
    )

    checkpoints: list[str] = Field(
        min_length=1,
        max_length=MAX_MODELS,
        description="checkpoint ids, job ids (their last checkpoint) or model ids",
    )
    prompt: str | None = Field(None, description="a plain prompt (or give messages)")
    messages: list[Message] | None = Field(
        None, description="a chat, rendered with each model's chat template"
    )
    fields: dict[str, Any] = Field(
        default_factory=dict,
        description="the row's other fields a job's reward reads (a task's answer)",
    )
    sampling: SamplingIn = Field(default_factory=SamplingIn)


class Completion(BaseModel):
    checkpoint: str
    completion: str | None = Field(description="null until generated, or when it failed")
    tokens: int | None = None
    finish_reason: Literal["stop", "length"] | None = None
    reward: float | None = Field(None, description="the source job's reward, when it has one")
    reward_note: str | None = Field(None, description="why there is no reward")
    error: str | None = Field(None, description="why this model gave no completion")


class GenerationOut(BaseModel):
    id: str = Field(examples=["gen-01jdx4k2m8a1b2c3d4e5f6g7"])
    object: Literal["generation"] = "generation"
    status: str
    request: dict = Field(description="the generation as submitted, with defaults")
    completions: list[Completion] = Field(description="one per checkpoint, in request order")
    created_at: datetime
    finished_at: datetime | None
    error: JobError | None
