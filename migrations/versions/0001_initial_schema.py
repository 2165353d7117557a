"""initial schema: owners, api keys, datasets, comparisons, jobs and their outputs

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What server.db.base's types are on each backend.
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TIME = sa.DateTime(timezone=True)


def _id(name: str = "id") -> sa.Column:
    return sa.Column(name, sa.String(length=40), nullable=False)


def _owner() -> sa.Column:
    return sa.Column("owner_id", sa.Integer(), nullable=False)


def _fk(table: str, column: str, target: str, ondelete: str = "CASCADE") -> sa.Constraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete=ondelete
    )


def _created() -> sa.Column:
    return sa.Column("created_at", TIME, nullable=False)


def _index(table: str, *columns: str, unique: bool = False) -> None:
    op.create_index(op.f(f"ix_{table}_{'_'.join(columns)}"), table, list(columns), unique=unique)


def upgrade() -> None:
    op.create_table(
        "owners",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        _created(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_owners")),
        sa.UniqueConstraint("name", name=op.f("uq_owners_name")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        _owner(),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        _created(),
        sa.Column("revoked_at", TIME, nullable=True),
        _fk("api_keys", "owner_id", "owners"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    _index("api_keys", "owner_id")
    op.create_table(
        "comparisons",
        _id(),
        _owner(),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("base_spec", JSON, nullable=False),
        sa.Column("variants", JSON, nullable=False),
        sa.Column("seeds", JSON, nullable=False),
        _created(),
        _fk("comparisons", "owner_id", "owners"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comparisons")),
    )
    _index("comparisons", "owner_id")
    op.create_table(
        "datasets",
        _id(),
        _owner(),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("stats", JSON, nullable=False),
        _created(),
        _fk("datasets", "owner_id", "owners"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
    )
    _index("datasets", "owner_id")
    _create_jobs()
    _create_job_outputs()


def _create_jobs() -> None:
    op.create_table(
        "jobs",
        _id(),
        _owner(),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("spec", JSON, nullable=False),
        sa.Column("comparison_id", sa.String(length=40), nullable=True),
        sa.Column("variant", sa.String(length=100), nullable=True),
        sa.Column("seed", sa.Integer(), nullable=True),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("total_steps", sa.Integer(), nullable=True),
        sa.Column("eta_seconds", sa.Double(), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("final_metrics", JSON, nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("resume", sa.Boolean(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=200), nullable=True),
        _created(),
        sa.Column("enqueued_at", TIME, nullable=True),
        sa.Column("started_at", TIME, nullable=True),
        sa.Column("finished_at", TIME, nullable=True),
        sa.Column("heartbeat_at", TIME, nullable=True),
        _fk("jobs", "comparison_id", "comparisons", ondelete="SET NULL"),
        _fk("jobs", "owner_id", "owners"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    _index("jobs", "comparison_id")
    _index("jobs", "owner_id", "kind", "status")
    _index("jobs", "status")
    op.create_table(
        "job_datasets",
        _id("job_id"),
        _id("dataset_id"),
        _fk("job_datasets", "dataset_id", "datasets"),
        _fk("job_datasets", "job_id", "jobs"),
        sa.PrimaryKeyConstraint("job_id", "dataset_id", name=op.f("pk_job_datasets")),
    )
    _index("job_datasets", "dataset_id")


def _create_job_outputs() -> None:
    op.create_table(
        "checkpoints",
        _id(),
        _id("job_id"),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        _created(),
        _fk("checkpoints", "job_id", "jobs"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkpoints")),
        sa.UniqueConstraint("job_id", "step", name=op.f("uq_checkpoints_job_id_step")),
    )
    _index("checkpoints", "job_id")
    op.create_table(
        "job_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _id("job_id"),
        sa.Column("step", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        _created(),
        _fk("job_events", "job_id", "jobs"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_events")),
    )
    _index("job_events", "job_id", "id")
    op.create_table(
        "metrics",
        _id("job_id"),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        _fk("metrics", "job_id", "jobs"),
        sa.PrimaryKeyConstraint("job_id", "name", "step", name=op.f("pk_metrics")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "samples",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _id("job_id"),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("completion", sa.Text(), nullable=False),
        sa.Column("reward", sa.Double(), nullable=True),
        sa.Column("advantage", sa.Double(), nullable=True),
        sa.Column("anchor_distance", sa.Double(), nullable=True),
        sa.Column("weight", sa.Double(), nullable=True),
        sa.Column("extra", JSON, nullable=False),
        _fk("samples", "job_id", "jobs"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_samples")),
        sa.UniqueConstraint("job_id", "step", "idx", name=op.f("uq_samples_job_id_step_idx")),
    )


def downgrade() -> None:
    # Children before parents; dropping a table drops its indexes.
    for table in (
        "samples",
        "metrics",
        "job_events",
        "checkpoints",
        "job_datasets",
        "jobs",
        "datasets",
        "comparisons",
        "api_keys",
        "owners",
    ):
        op.drop_table(table)
