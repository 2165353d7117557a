"""The OpenAI fine-tuning API's shapes (files, fine_tuning.job, its events and checkpoints), as
the official `openai` SDK's types define them: unix-second timestamps, `object` names, cursor
lists. Requests accept what the SDK sends; unknown keys are refused, naming them."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")
Auto = Literal["auto"]


class OpenAIList(BaseModel, Generic[T]):
    """`{"object": "list", "data": [...], "has_more": ...}`: the SDK's cursor page passes the
    last item's id as `after` while `has_more`."""

    object: Literal["list"] = "list"
    data: list[T]
    has_more: bool
    first_id: str | None = None
    last_id: str | None = None

    @classmethod
    def of(cls, data: list[Any], has_more: bool) -> OpenAIList[Any]:
        return cls(
            data=data,
            has_more=has_more,
            first_id=data[0].id if data else None,
            last_id=data[-1].id if data else None,
        )


class FileObject(BaseModel):
    id: str = Field(examples=["ds-01jdx4k2m8a1b2c3d4e5f6g7"])
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: Literal["fine-tune"] = "fine-tune"
    status: Literal["processed"] = Field(
        "processed", description="always processed: gro validates every row at upload"
    )
    expires_at: int | None = None
    status_details: str | None = None


class FileDeleted(BaseModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool = True


class JobErrorOut(BaseModel):
    code: str
    message: str
    param: str | None = None


class Hyperparameters(BaseModel):
    """Resolved: every "auto" replaced by the value the job trains with."""

    model_config = ConfigDict(extra="allow")

    batch_size: int | None = None
    learning_rate_multiplier: float | None = None
    n_epochs: int | None = None


class FineTuningJobOut(BaseModel):
    id: str
    object: Literal["fine_tuning.job"] = "fine_tuning.job"
    created_at: int
    error: JobErrorOut | None = None
    fine_tuned_model: str | None = Field(
        None, description="the job id once it succeeded: use it as `model` of another job"
    )
    finished_at: int | None = None
    hyperparameters: Hyperparameters
    model: str
    organization_id: str
    result_files: list[str] = Field(default_factory=list)
    seed: int
    status: str = Field(
        examples=["running"],
        description="validating_files|queued|running|paused|succeeded|failed|cancelled",
    )
    trained_tokens: int | None = None
    training_file: str
    validation_file: str | None = None
    estimated_finish: int | None = None
    integrations: list[dict[str, Any]] | None = None
    metadata: dict[str, str] | None = None
    method: dict[str, Any] | None = None
    suffix: str | None = None
    user_provided_suffix: str | None = None


class JobEventOut(BaseModel):
    id: str
    object: Literal["fine_tuning.job.event"] = "fine_tuning.job.event"
    created_at: int
    level: Literal["info", "warn", "error"]
    message: str
    type: Literal["message", "metrics"] = "message"
    data: dict[str, Any] | None = None


class JobCheckpointOut(BaseModel):
    id: str
    object: Literal["fine_tuning.job.checkpoint"] = "fine_tuning.job.checkpoint"
    created_at: int
    fine_tuned_model_checkpoint: str = Field(
        description="the checkpoint id: use it as `model` of another job"
    )
    fine_tuning_job_id: str
    metrics: dict[str, float | None]
    step_number: int


class MethodIn(BaseModel):
    """`method`: one of supervised, dpo, reinforcement, with its settings under its own key."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["supervised", "dpo", "reinforcement"]
    supervised: dict[str, Any] | None = None
    dpo: dict[str, Any] | None = None
    reinforcement: dict[str, Any] | None = None


class FineTuningJobCreate(BaseModel):
    """What `client.fine_tuning.jobs.create(...)` sends; `gro` is this service's extension
    (`extra_body={"gro": {...}}`): `method` picks any online preset for reinforcement,
    `spec` is merged into the job spec built from the request (docs/openai.md)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, examples=["builtin:tiny-llama"])
    training_file: str = Field(min_length=1)
    validation_file: str | None = None
    hyperparameters: dict[str, Any] | None = None
    method: MethodIn | None = None
    seed: int | None = Field(None, ge=0)
    suffix: str | None = Field(None, max_length=64)
    metadata: dict[str, str] | None = None
    integrations: list[dict[str, Any]] | None = None
    gro: dict[str, Any] | None = None
