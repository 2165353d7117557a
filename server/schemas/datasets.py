"""Datasets: uploaded files, their validation reports and rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from server.schemas.common import Out, Problem


class DatasetOut(Out):
    id: str = Field(examples=["ds-01jdx4k2m8a1b2c3d4e5f6g7"])
    object: Literal["dataset"] = "dataset"
    filename: str = Field(examples=["pairs.jsonl"])
    format: str = Field(examples=["jsonl"])
    kind: str = Field(examples=["preference"], description="prompt | preference | unpaired | sft")
    rows: int = Field(examples=[512])
    bytes: int = Field(examples=[48213])
    sha256: str
    stats: dict[str, Any] = Field(description="row count, length percentiles, label balance")
    created_at: datetime


class ValidationOut(BaseModel):
    """A dry run's report: every problem (up to 100) and the statistics."""

    object: Literal["dataset.validation"] = "dataset.validation"
    ok: bool
    kind: str | None = Field(examples=["preference"])
    rows: int
    error_count: int = Field(description="all problems, also those past the first 100")
    errors: list[Problem]
    stats: dict[str, Any]


class RowsOut(BaseModel):
    object: Literal["dataset.rows"] = "dataset.rows"
    data: list[dict[str, Any]] = Field(examples=[[{"prompt": "2+2=", "completion": "4"}]])
    offset: int
    limit: int
    total: int
    truncated: bool = Field(
        False, description="long strings were cut, or rows left out to keep the page small"
    )


class HubDatasetIn(BaseModel):
    """A Hugging Face dataset to register: one config and split, its columns renamed onto
    gro's fields (the keys of `data.train: {hub: ...}` in a job spec)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=400, examples=["openai/gsm8k"])
    config: str | None = Field(None, examples=["main"])
    split: str = Field("train", examples=["train"])
    revision: str | None = Field(None, description="branch, tag or commit; default: main")
    columns: dict[str, str] = Field(
        default_factory=dict,
        examples=[{"prompt": "question", "answer": "answer"}],
        description="gro field <- dataset column; unmapped columns keep their names",
    )
