"""Cursor pages over time-ordered ids: newest first, `after` is the last id already seen."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session


def page(
    session: Session,
    query: Select[Any],
    id_column: InstrumentedAttribute[str],
    after: str | None,
    limit: int,
) -> tuple[list[Any], bool]:
    """Up to `limit` rows older than `after`, newest first, and whether more follow."""
    query = query.order_by(id_column.desc())
    if after:
        query = query.where(id_column < after)
    rows = list(session.scalars(query.limit(limit + 1)))
    return rows[:limit], len(rows) > limit
