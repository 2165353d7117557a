"""Evaluations: a model's held-out reward, pass@k, KL to reference and diversity."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gro_core.spec import MAX_SEED, RewardSpec
from server.schemas.jobs import JobError


class EvaluationIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "model": "job-01jdx4k2m8a1b2c3d4e5f6g7",
                    "dataset": "builtin:arithmetic",
                    "num_generations": 8,
                }
            ]
        },
    )

    model: str = Field(
        min_length=1, description="a checkpoint id, a job id (its last checkpoint) or a model id"
    )
    dataset: str = Field(
        min_length=1,
        description="a prompt dataset id (with the fields rewards read) or builtin:<task>",
    )
    rewards: list[RewardSpec] = Field(
        default_factory=list, description="default: the task's rule reward"
    )
    num_generations: int = Field(4, ge=1, le=64, description="samples per prompt (k of pass@k)")
    num_prompts: int = Field(64, ge=1, le=4096)
    max_new_tokens: int = Field(32, ge=1, le=4096)
    temperature: float = Field(1.0, gt=0.0)
    seed: int = Field(0, ge=0, le=MAX_SEED)
    with_reference: bool = Field(True, description="also measure KL to the reference model")
    name: str | None = None


class EvaluationOut(BaseModel):
    id: str = Field(examples=["eval-01jdx4k2m8a1b2c3d4e5f6g7"])
    object: Literal["evaluation"] = "evaluation"
    name: str | None
    status: str
    model: str
    dataset: str
    request: dict = Field(description="the evaluation as submitted, with defaults")
    results: dict[str, float | None] = Field(
        examples=[{"eval/reward": 0.62, "eval/pass@8": 0.9, "eval/kl_ref": 0.8}]
    )
    created_at: datetime
    finished_at: datetime | None
    error: JobError | None
    completions_url: str
