"""Dataset rows and files: storage paths come from ids, never from user-supplied names."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db.models import ACTIVE_STATUSES, Dataset, Job, JobDataset, Owner
from server.db.owners import visible
from server.db.pages import page


def dataset_dir(storage: Path, dataset_id: str) -> Path:
    return storage / "datasets" / dataset_id


def dataset_file(storage: Path, dataset: Dataset) -> Path:
    """Where a dataset's file lives: `datasets/<id>/data.<format>`."""
    suffix = {"jsonl": "jsonl", "parquet": "parquet"}[dataset.format]
    return dataset_dir(storage, dataset.id) / f"data.{suffix}"


def get_dataset(session: Session, owner: Owner, dataset_id: str) -> Dataset | None:
    """The dataset if it exists and `owner` may see it."""
    return session.scalar(visible(select(Dataset), Dataset, owner).where(Dataset.id == dataset_id))


def list_datasets(
    session: Session, owner: Owner, after: str | None, limit: int
) -> tuple[list[Dataset], bool]:
    """Newest first, `limit` at most, after the cursor id; and whether more follow."""
    return page(session, visible(select(Dataset), Dataset, owner), Dataset.id, after, limit)


def active_jobs_using(session: Session, dataset_id: str) -> list[str]:
    """Ids of queued or running jobs that read the dataset."""
    query = (
        select(Job.id)
        .join(JobDataset, JobDataset.job_id == Job.id)
        .where(JobDataset.dataset_id == dataset_id, Job.status.in_(ACTIVE_STATUSES))
    )
    return list(session.scalars(query))


def delete_dataset(session: Session, dataset: Dataset) -> None:
    """Delete the row (the caller commits, then removes the file)."""
    session.delete(dataset)
