"""Jobs and what they produce: progress, events, metric series, samples, checkpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from gro_core.spec import JobSpec
from server.schemas.common import Out

SPEC_EXAMPLE: dict[str, Any] = {
    "name": "dpo-reverse",
    "model": "builtin:tiny-llama",
    "method": "dpo",
    "method_args": {"beta": 0.1},
    "data": {"task": "builtin:reverse-preference"},
    "train": {"steps": 100, "batch_size": 16, "lr": 1e-3},
}


class _DocumentedAsJobSpec:
    """`Annotated` metadata: OpenAPI shows gro_core's JobSpec (every key with its docstring)
    while the value validates as any mapping. The service parses the spec itself, naming each
    problem by its dotted key (422 `invalid_spec`, docs/jobspec.md), which FastAPI's own
    validation of a JobSpec body would not."""

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        # What the field itself documents (description, examples), minus the mapping's type.
        documented = handler(schema)
        notes = {k: v for k, v in documented.items() if k not in ("type", "additionalProperties")}
        # Generated as an array's item, so that JobSpec becomes one component every body that
        # embeds a spec points to (the handler writes a top-level model out inline).
        spec = handler(core_schema.list_schema(JobSpec.__pydantic_core_schema__))["items"]
        return {**spec, **notes}


SpecDocument = Annotated[dict[str, Any], _DocumentedAsJobSpec()]
"""A job spec as submitted: documented as JobSpec, parsed by server.services.specs."""


class Progress(BaseModel):
    step: int = Field(examples=[120])
    total_steps: int | None = Field(examples=[500])
    eta_seconds: float | None = Field(examples=[42.5])


class JobError(BaseModel):
    code: str = Field(examples=["non_finite"])
    message: str = Field(examples=["non-finite loss (nan) at step 37"])


class JobOut(BaseModel):
    id: str = Field(examples=["job-01jdx4k2m8a1b2c3d4e5f6g7"])
    object: Literal["job"] = "job"
    name: str | None
    method: str = Field(examples=["dpo"])
    status: str = Field(
        examples=["running"], description="queued|running|paused|succeeded|failed|cancelled"
    )
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    progress: Progress
    error: JobError | None
    final_metrics: dict[str, float | None] = Field(examples=[{"eval/pref_accuracy": 0.93}])
    spec: dict[str, Any] = Field(description="the resolved spec: every default written out")
    comparison_id: str | None = None
    variant: str | None = None
    seed: int | None = None
    cancel_requested: bool = False
    attempts: int = Field(0, description="how many times a worker started the job")


class EventOut(Out):
    id: int
    object: Literal["job.event"] = "job.event"
    job_id: str
    step: int | None
    kind: str = Field(examples=["eval"])
    message: str = Field(examples=["eval/pref_accuracy=0.91"])
    created_at: datetime


class Series(BaseModel):
    steps: list[int]
    values: list[float | None] = Field(description="null where the value was not finite")
    total_points: int = Field(description="points stored, before downsampling")


class MetricsOut(BaseModel):
    object: Literal["job.metrics"] = "job.metrics"
    job_id: str
    names: list[str] = Field(description="every metric name the job has")
    series: dict[str, Series]


class SampleOut(Out):
    id: int
    object: Literal["job.sample"] = "job.sample"
    step: int
    prompt: str
    completion: str
    reward: float | None
    advantage: float | None
    anchor_distance: float | None
    weight: float | None
    extra: dict[str, Any]


class SamplesOut(BaseModel):
    object: Literal["list"] = "list"
    data: list[SampleOut]
    steps: list[int] = Field(description="every step that has samples, ascending")


class CheckpointOut(BaseModel):
    id: str = Field(examples=["ckpt-01jdx4k2m8a1b2c3d4e5f6g7"])
    object: Literal["checkpoint"] = "checkpoint"
    job_id: str
    step: int
    bytes: int
    created_at: datetime
    download_url: str = Field(
        description="a signed link that works without the API key until it expires"
    )
