"""Keeping an uploaded dataset: validate, then file and row together or neither."""

from __future__ import annotations

from sqlalchemy.orm import Session

from gro_core.data import ValidationReport, validate_file
from server.api.errors import ApiError
from server.config import Settings
from server.db.datasets import dataset_file
from server.db.ids import new_id
from server.db.models import Dataset, Owner
from server.schemas.common import Problem
from server.storage import StoredUpload, move_into, remove_tree


def problems(report: ValidationReport) -> list[Problem]:
    return [Problem(**issue.to_dict()) for issue in report.errors]


def validated(upload: StoredUpload) -> ValidationReport:
    """The file's report; 422 naming the first problem's line and field (all in details),
    and the upload discarded, when it has any problem."""
    try:
        report = validate_file(upload.path)
    except BaseException:
        upload.discard()
        raise
    if not report.ok:
        upload.discard()
        found = problems(report)
        first = found[0]
        raise ApiError(
            422, first.code, first.message, line=first.line, field=first.field, details=found
        )
    return report


def store_dataset(
    session: Session, owner: Owner, upload: StoredUpload, filename: str, settings: Settings
) -> Dataset:
    """Validate the upload, move it under `datasets/<id>/` and commit its row; a failure at any
    point leaves neither file nor row behind."""
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
