"""Comparison rows: creation, the caller's view of them, and the jobs each expanded into."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db.ids import new_id
from server.db.models import Comparison, Job, Owner
from server.db.owners import visible
from server.db.pages import page


def create_comparison(
    session: Session,
    owner: Owner,
    *,
    name: str,
    base: dict[str, Any],
    variants: list[dict[str, Any]],
    seeds: list[int],
) -> Comparison:
    """A new comparison row (added, not committed: its jobs join the same transaction)."""
    comparison = Comparison(
        id=new_id("comparison"),
        owner_id=owner.id,
        name=name,
        base_spec=base,
        variants=variants,
        seeds=seeds,
    )
    session.add(comparison)
    return comparison


def get_comparison(session: Session, owner: Owner, comparison_id: str) -> Comparison | None:
    """The comparison if it exists and `owner` may see it."""
    query = visible(select(Comparison), Comparison, owner).where(Comparison.id == comparison_id)
    return session.scalar(query)


def list_comparisons(
    session: Session, owner: Owner, after: str | None, limit: int
) -> tuple[list[Comparison], bool]:
    """Newest first, `limit` at most, after the cursor id; and whether more follow."""
    query = visible(select(Comparison), Comparison, owner)
    return page(session, query, Comparison.id, after, limit)


def comparison_jobs(session: Session, comparison_id: str) -> list[Job]:
    """Its jobs in creation order (variant by variant, seed by seed)."""
    query = select(Job).where(Job.comparison_id == comparison_id).order_by(Job.id)
    return list(session.scalars(query))
