"""The tables, as SQLAlchemy 2 ORM classes. The API's shapes live apart, in server.schemas.

Ids a client sees are strings with a kind prefix and a time-ordered body (`job-01J...`), so
listing newest first is ordering by id, and a cursor is simply the last id seen.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    literal_column,
)
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, JSONType, UTCDateTime, utcnow

# Job states; queued, running and paused are "active" (a worker owns or will own the job).
QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, PAUSED = (
    "queued",
    "running",
    "succeeded",
    "failed",
    "cancelled",
    "paused",
)
JOB_STATUSES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, PAUSED)
ACTIVE_STATUSES = (QUEUED, RUNNING, PAUSED)
FINISHED_STATUSES = (SUCCEEDED, FAILED, CANCELLED)


def _owner_fk(index: bool = True) -> Mapped[int]:
    return mapped_column(ForeignKey("owners.id", ondelete="CASCADE"), index=index)


def _created() -> Mapped[datetime]:
    return mapped_column(UTCDateTime, default=utcnow)


class Owner(Base):
    """A user or team: owns datasets, jobs and comparisons; admins see everyone's."""

    __tablename__ = "owners"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = _created()


class ApiKey(Base):
    """A Bearer key, stored as its SHA-256 (keys are 256 random bits: no slow hash needed)."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = _owner_fk()
    prefix: Mapped[str] = mapped_column(String(16))
    """The key's first characters, to tell keys apart in listings."""
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = _created()
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Dataset(Base):
    """An uploaded, validated dataset file, stored under `datasets/<id>/` (never by its name)."""

    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner_id: Mapped[int] = _owner_fk()
    filename: Mapped[str] = mapped_column(String(255))
    """The uploader's file name, for display only."""
    format: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    rows: Mapped[int] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    stats: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = _created()


class Comparison(Base):
    """One base spec run as several variants over several seeds (one job each)."""

    __tablename__ = "comparisons"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner_id: Mapped[int] = _owner_fk()
    name: Mapped[str] = mapped_column(String(200))
    base_spec: Mapped[dict[str, Any]] = mapped_column(JSONType)
    variants: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    seeds: Mapped[list[int]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = _created()


class Job(Base):
    """A training job or an evaluation (`kind`), its spec, state and progress."""

    __tablename__ = "jobs"
    __table_args__ = (Index(None, "owner_id", "kind", "status"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner_id: Mapped[int] = _owner_fk(index=False)  # led by the (owner, kind, status) index
    kind: Mapped[str] = mapped_column(String(16), default="train")
    """train | evaluation"""
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    method: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=QUEUED, index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType)
    """The resolved spec: every default written out."""
    comparison_id: Mapped[str | None] = mapped_column(
        ForeignKey("comparisons.id", ondelete="SET NULL"), nullable=True, index=True
    )
    variant: Mapped[str | None] = mapped_column(String(100), nullable=True)
    seed: Mapped[int | None] = mapped_column(Integer, nullable=True)
    step: Mapped[int] = mapped_column(Integer, default=0)
    total_steps: Mapped[int | None] = mapped_column(Integer, nullable=True)
    eta_seconds: Mapped[float | None] = mapped_column(Double, nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    final_metrics: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    pause_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    """Set with cancel_requested: the run stops the same way, and ends `paused`."""
    openai: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    """What a job created through /v1/fine_tuning/jobs was sent that its spec does not hold
    (training_file, suffix, metadata, method, resolved hyperparameters)."""
    resume: Mapped[bool] = mapped_column(Boolean, default=False)
    """The next run continues from the job's last checkpoint."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    """How many times a worker claimed the job."""
    metrics_version: Mapped[int] = mapped_column(Integer, default=0)
    """Bumped in the transaction of every write to the job's metric points: a poll of its
    metrics compares it instead of reading the points (server/services/metrics.py)."""
    metrics_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Bumped when points are deleted or an existing point is written again: series kept from
    earlier points are stale (server/services/series_cache.py); appends leave it."""
    row_version: Mapped[int] = mapped_column(
        Integer, default=0, server_default="0", onupdate=literal_column("row_version") + 1
    )
    """Bumped by every UPDATE of the row (the column's onupdate: ORM flushes and Core
    update(Job) alike): a poll of the job list compares the sum of its jobs' versions
    instead of reading them (server/services/job_list.py)."""
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = _created()
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class JobDataset(Base):
    """Which datasets a job reads (a dataset in use by an active job cannot be deleted)."""

    __tablename__ = "job_datasets"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class JobEvent(Base):
    """A line of a job's log: created, started, eval, checkpoint, resumed, failed, ..."""

    __tablename__ = "job_events"
    __table_args__ = (Index(None, "job_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()


class Metric(Base):
    """One point of a series; the key (job, name, step) makes a replayed write idempotent."""

    __tablename__ = "metrics"
    # SQLite: rows stored in key order, so a series is one sequential range read that holds
    # its values (a rowid table would look each value up apart from the key's index).
    __table_args__ = ({"sqlite_with_rowid": False},)

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[float | None] = mapped_column(Double, nullable=True)
    """null for a non-finite value (JSON has no NaN)."""


class Sample(Base):
    """A scored completion of one step; (job, step, idx) makes a replayed write idempotent."""

    __tablename__ = "samples"
    __table_args__ = (UniqueConstraint("job_id", "step", "idx"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    idx: Mapped[int] = mapped_column(Integer)
    """Position among the step's samples."""
    prompt: Mapped[str] = mapped_column(Text)
    completion: Mapped[str] = mapped_column(Text)
    reward: Mapped[float | None] = mapped_column(Double, nullable=True)
    advantage: Mapped[float | None] = mapped_column(Double, nullable=True)
    anchor_distance: Mapped[float | None] = mapped_column(Double, nullable=True)
    weight: Mapped[float | None] = mapped_column(Double, nullable=True)
    extra: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    """Anything else the trainer reported (group, row fields of an evaluation, ...)."""


class Checkpoint(Base):
    """A checkpoint directory of a job's run, stored under `jobs/<job id>/checkpoints/`."""

    __tablename__ = "checkpoints"
    __table_args__ = (UniqueConstraint("job_id", "step"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    step: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(500))
    """Relative to the storage directory."""
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = _created()


class JobNode(Base):
    """One machine (worker) of an attempt at a job spanning several (resources.nnodes > 1).
    The attempt's owner writes node 0 with the rendezvous endpoint it hosts; each worker that
    joins takes the next free node number (the unique key makes two joiners never share one)
    and reads the endpoint from node 0."""

    __tablename__ = "job_nodes"
    __table_args__ = (UniqueConstraint("job_id", "attempt", "node"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    node: Mapped[int] = mapped_column(Integer)
    worker: Mapped[str] = mapped_column(String(200))
    endpoint: Mapped[str] = mapped_column(String(300))
    """host:port of the attempt's c10d rendezvous (hosted by node 0's agent)."""
    joined_at: Mapped[datetime] = _created()
