"""Comparisons: one base spec × variants × seeds, and a summary over seeds."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gro_core.evaluation.frontier import Frontier, RunCurve
from gro_core.spec import MAX_SEED
from gro_core.stats import Interval
from server.schemas.jobs import SPEC_EXAMPLE, JobOut, SpecDocument


class VariantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1, max_length=100, examples=["gro"])
    overrides: dict[str, Any] = Field(
        default_factory=dict,
        description="deep-merged into the base spec; keys may be dotted (train.lr)",
        examples=[{"method": "gro", "method_args": {"beta": 0.5}}],
    )


class ComparisonIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "dpo-vs-gro",
                    "base": SPEC_EXAMPLE,
                    "variants": [
                        {"label": "dpo", "overrides": {}},
                        {"label": "gro", "overrides": {"method": "gro", "method_args": {}}},
                    ],
                    "seeds": [0, 1],
                }
            ]
        },
    )

    name: str = Field(min_length=1, max_length=200)
    base: SpecDocument = Field(description="a job spec every variant starts from")
    variants: list[VariantIn] = Field(min_length=1, max_length=50)
    seeds: list[Annotated[int, Field(ge=0, le=MAX_SEED)]] = Field(
        default_factory=lambda: [0], min_length=1, max_length=50
    )


class MetricSummary(Interval):
    values: list[float] = Field(description="one per seed, in the order of `seeds`")
    diff: Interval | None = Field(
        None, description="paired (same seed) difference against the first variant"
    )


class ComparisonOut(BaseModel):
    id: str = Field(examples=["cmp-01jdx4k2m8a1b2c3d4e5f6g7"])
    object: Literal["comparison"] = "comparison"
    name: str
    base: dict[str, Any]
    variants: list[VariantIn]
    seeds: list[int]
    created_at: datetime
    status: str = Field(description="running while any job is active, else finished")
    jobs: list[JobOut]
    summary: dict[str, dict[str, MetricSummary]] = Field(
        description="variant label -> metric -> mean and 95% bootstrap CI over seeds"
    )


class FrontierOut(BaseModel):
    comparison_id: str
    object: Literal["comparison.frontier"] = "comparison.frontier"
    table: Frontier = Field(
        description="each variant at the requested KL values, with paired differences against "
        "the baseline"
    )
    line: Frontier = Field(
        description="each variant at 21 KL values from 0 to the largest KL any run reached, "
        "for a chart (no differences)"
    )
    curves: list[RunCurve] = Field(
        description="every succeeded run's evaluations that logged both metrics, in step order"
    )
