"""job_nodes: the machines (workers) of one attempt at a job spanning several
(resources.nnodes > 1), and the rendezvous endpoint they meet at.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_nodes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=40), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("node", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=200), nullable=False),
        sa.Column("endpoint", sa.String(length=300), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_nodes_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_nodes")),
        sa.UniqueConstraint(
            "job_id", "attempt", "node", name=op.f("uq_job_nodes_job_id_attempt_node")
        ),
    )
    op.create_index(op.f("ix_job_nodes_job_id"), "job_nodes", ["job_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_job_nodes_job_id"), table_name="job_nodes")
    op.drop_table("job_nodes")
