"""Datasets: keep an upload (validated; file and row together or neither), dry-run a file,
read rows, delete."""

from __future__ import annotations

from itertools import islice
from typing import Any

from sqlalchemy.orm import Session

from gro_core.data import DatasetError, ValidationReport, iter_rows, validate_file
from server.config import Settings
from server.db.datasets import active_jobs_using, dataset_dir, dataset_file, delete_dataset
from server.db.ids import new_id
from server.db.models import Dataset, Owner
from server.errors import ConflictError, GoneError, InvalidRequestError
from server.schemas.common import Problem
from server.schemas.datasets import ValidationOut
from server.services.limits import check_storage
from server.storage import StoredUpload, move_into, remove_tree


def problems(report: ValidationReport) -> list[Problem]:
    return [Problem(**issue.to_dict()) for issue in report.errors]


def validated(upload: StoredUpload) -> ValidationReport:
    """The file's report; InvalidRequestError naming the first problem's line and field (all
    in details), and the upload discarded, when it has any problem."""
    try:
        report = validate_file(upload.path)
    except BaseException:
        upload.discard()
        raise
    if not report.ok:
        upload.discard()
        found = problems(report)
        first = found[0]
        raise InvalidRequestError(
            first.code, first.message, line=first.line, field=first.field, details=found
        )
    return report


def store_dataset(
    session: Session, owner: Owner, upload: StoredUpload, filename: str, settings: Settings
) -> Dataset:
    """Validate the upload, move it under `datasets/<id>/` and commit its row; a failure at any
    point leaves neither file nor row behind."""
    try:
        check_storage(session, owner, settings, upload.bytes)
    except BaseException:
        upload.discard()
        raise
    report = validated(upload)
    dataset = Dataset(
        id=new_id("dataset"),
        owner_id=owner.id,
        filename=filename[:255],
        format=upload.format,
        kind=report.kind,
        rows=report.rows,
        bytes=upload.bytes,
        sha256=upload.sha256,
        stats=report.stats,
    )
    target = dataset_file(settings.storage_dir, dataset)
    move_into(upload, target)
    try:
        session.add(dataset)
        session.commit()
    except BaseException:
        session.rollback()
        remove_tree(target.parent)
        raise
    return dataset


def dry_run(upload: StoredUpload) -> ValidationOut:
    """Every problem of the file (up to 100, all counted) and its statistics; the upload is
    discarded whatever the outcome."""
    try:
        report = validate_file(upload.path)
    finally:
        upload.discard()
    return ValidationOut(
        ok=report.ok,
        kind=report.kind,
        rows=report.rows,
        error_count=report.error_count,
        errors=problems(report),
        stats=report.stats,
    )


def read_rows(
    dataset: Dataset, settings: Settings, offset: int, limit: int
) -> list[dict[str, Any]]:
    """Rows `offset` .. `offset + limit` of the stored file; GoneError when it cannot be read."""
    rows = iter_rows(dataset_file(settings.storage_dir, dataset))
    try:
        return [row for _, row in islice(rows, offset, offset + limit)]
    except (DatasetError, FileNotFoundError) as exc:
        raise GoneError("file_missing", f"the dataset's file cannot be read: {exc}") from exc


def remove_dataset(session: Session, dataset: Dataset, settings: Settings) -> None:
    """Delete the row, then the file; ConflictError while a queued or running job reads it."""
    users = active_jobs_using(session, dataset.id)
    if users:
        raise ConflictError(
            "dataset_in_use", f"dataset {dataset.id} is used by active jobs: {', '.join(users)}"
        )
    delete_dataset(session, dataset)
    session.commit()
    remove_tree(dataset_dir(settings.storage_dir, dataset.id))  # after the commit: no dangling row
