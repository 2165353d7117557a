"""Comparisons: expand variants × seeds into jobs (all or none), and summarise them."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from gro_core.spec import apply_overrides
from gro_core.stats import bootstrap_interval, paired_difference
from server.config import Settings
from server.db import comparisons as db_comparisons
from server.db.models import SUCCEEDED, Comparison, Job, Owner
from server.errors import InvalidRequestError, ServiceError
from server.queue import JobQueue
from server.schemas.comparisons import ComparisonIn, ComparisonOut, MetricSummary, VariantIn
from server.services.jobs import enqueue, job_out, submit_job
from server.services.limits import check_active_jobs, check_comparison_size

# Per-step bookkeeping, not results: left out of the summary.
_SKIPPED_PREFIXES = ("train/",)


def variant_document(base: dict[str, Any], variant: VariantIn, seed: int) -> dict[str, Any]:
    try:
        merged = apply_overrides(base, variant.overrides)
    except ValueError as exc:
        raise InvalidRequestError(
            "invalid_overrides", str(exc), field="variants.overrides"
        ) from exc
    return apply_overrides(merged, {"train.seed": seed})


def create_comparison(
    session: Session, owner: Owner, request: ComparisonIn, settings: Settings
) -> tuple[Comparison, list[Job]]:
    """The comparison and its jobs, flushed; any invalid variant refuses the whole request."""
    check_comparison_size(len(request.variants), len(request.seeds), settings)
    check_active_jobs(session, owner, settings, len(request.variants) * len(request.seeds))
    labels = [v.label for v in request.variants]
    if len(set(labels)) != len(labels):
        raise InvalidRequestError(
            "duplicate_label", "variant labels must be unique", field="variants"
        )
    comparison = db_comparisons.create_comparison(
        session,
        owner,
        name=request.name,
        base=request.base,
        variants=[v.model_dump() for v in request.variants],
        seeds=list(request.seeds),
    )
    jobs = []
    for i, variant in enumerate(request.variants):
        for seed in request.seeds:
            document = variant_document(request.base, variant, seed)
            document["name"] = f"{request.name}/{variant.label}/seed{seed}"
            try:
                jobs.append(
                    submit_job(
                        session,
                        owner,
                        document,
                        settings,
                        comparison_id=comparison.id,
                        variant=variant.label,
                        seed=seed,
                    )
                )
            except ServiceError as exc:
                raise _in_variant(exc, i, variant.label) from exc
    return comparison, jobs


def _in_variant(exc: ServiceError, index: int, label: str) -> ServiceError:
    field = f"variants.{index}.{exc.field}" if exc.field else f"variants.{index}"
    return exc.moved(field, f"variant {label!r}: {exc.message}")


def start_comparison(
    session: Session, queue: JobQueue, owner: Owner, request: ComparisonIn, settings: Settings
) -> ComparisonOut:
    """Create the comparison and its jobs in one transaction, then enqueue every job."""
    comparison, jobs = create_comparison(session, owner, request, settings)
    session.commit()
    for job in jobs:
        enqueue(session, queue, job)
    return comparison_out(comparison, jobs)


def show_comparison(session: Session, comparison: Comparison) -> ComparisonOut:
    """The comparison with its jobs and their summary, as they are now."""
    return comparison_out(comparison, db_comparisons.comparison_jobs(session, comparison.id))


def summarize(comparison: Comparison, jobs: list[Job]) -> dict[str, dict[str, MetricSummary]]:
    """variant -> metric -> mean and 95% CI over the seeds that succeeded, with the paired
    (same seed) difference against the first variant."""
    finals: dict[str, dict[str, dict[int, float]]] = {}  # variant -> metric -> seed -> value
    for job in jobs:
        if job.status != SUCCEEDED or job.variant is None or job.seed is None:
            continue
        for name, value in (job.final_metrics or {}).items():
            if value is not None and not name.startswith(_SKIPPED_PREFIXES):
                finals.setdefault(job.variant, {}).setdefault(name, {})[job.seed] = float(value)
    labels = [v["label"] for v in comparison.variants]
    baseline = finals.get(labels[0], {})
    summary: dict[str, dict[str, MetricSummary]] = {}
    for label in labels:
        summary[label] = {}
        for name, by_seed in sorted(finals.get(label, {}).items()):
            ordered = [by_seed[s] for s in comparison.seeds if s in by_seed]
            interval = bootstrap_interval(ordered)
            diff = (
                None if label == labels[0] else paired_difference(by_seed, baseline.get(name, {}))
            )
            summary[label][name] = MetricSummary(**interval.model_dump(), values=ordered, diff=diff)
    return summary


def comparison_out(comparison: Comparison, jobs: list[Job]) -> ComparisonOut:
    active = any(job.status in ("queued", "running") for job in jobs)
    return ComparisonOut(
        id=comparison.id,
        name=comparison.name,
        base=comparison.base_spec,
        variants=[VariantIn(**v) for v in comparison.variants],
        seeds=comparison.seeds,
        created_at=comparison.created_at,
        status="running" if active else "finished",
        jobs=[job_out(job) for job in jobs],
        summary=summarize(comparison, jobs),
    )
