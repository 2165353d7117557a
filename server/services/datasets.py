"""Datasets: keep an upload (validated; file and row together or neither), dry-run a file,
read rows, delete."""

from __future__ import annotations

import json
from itertools import islice
from typing import Any, BinaryIO

from sqlalchemy.orm import Session

from gro_core.data import Bounds, DatasetError, ValidationReport, iter_rows, validate_file
from server.config import Settings
from server.db.datasets import active_jobs_using, dataset_dir, dataset_file, delete_dataset
from server.db.ids import new_id
from server.db.models import Dataset, Owner
from server.errors import ConflictError, GoneError, InvalidRequestError
from server.schemas.common import Problem
from server.schemas.datasets import ValidationOut
from server.services.limits import check_storage
from server.storage import StoredUpload, move_into, receive_upload, remove_tree


def receive(source: BinaryIO, filename: str | None, settings: Settings) -> StoredUpload:
    """An upload copied to storage under the server's size limit, orphaned uploads of dead
    requests swept first (every upload route: /v1/datasets, its dry run, /v1/files)."""
    return receive_upload(
        source,
        filename,
        settings.storage_dir,
        settings.max_upload_bytes,
        settings.upload_tmp_max_age_s,
    )


def bounds(settings: Settings) -> Bounds:
    """What one file may hold, from the server's limits."""
    return Bounds(
        line=settings.limit_row_bytes,
        rows=settings.limit_dataset_rows,
        bytes=settings.limit_decompressed_bytes,
    )


def problems(report: ValidationReport) -> list[Problem]:
    return [Problem(**issue.to_dict()) for issue in report.errors]


def validated(upload: StoredUpload, settings: Settings) -> ValidationReport:
    """The file's report; InvalidRequestError naming the first problem's line and field (all
    in details), and the upload discarded, when it has any problem."""
    try:
        report = validate_file(upload.path, bounds=bounds(settings))
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
    report = validated(upload, settings)
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


def dry_run(upload: StoredUpload, settings: Settings) -> ValidationOut:
    """Every problem of the file (up to 100, all counted) and its statistics; the upload is
    discarded whatever the outcome."""
    try:
        report = validate_file(upload.path, bounds=bounds(settings))
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


PREVIEW_CHARS = 2000
"""Longest string a row preview shows; longer ones end with a note of their full length."""
PREVIEW_BYTES = 1 << 20
"""Most JSON bytes of rows one preview returns; the rows past it are left for the next page."""


def shorten(value: Any) -> tuple[Any, bool]:
    """`value` with every string over PREVIEW_CHARS cut there, and whether any was."""
    if isinstance(value, str) and len(value) > PREVIEW_CHARS:
        return f"{value[:PREVIEW_CHARS]}… [{len(value):,} characters]", True
    if isinstance(value, dict):
        pairs = {k: shorten(v) for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, any(cut for _, cut in pairs.values())
    if isinstance(value, list):
        items = [shorten(v) for v in value]
        return [v for v, _ in items], any(cut for _, cut in items)
    return value, False


def read_rows(
    dataset: Dataset, settings: Settings, offset: int, limit: int
) -> tuple[list[dict[str, Any]], bool]:
    """Rows `offset` .. `offset + limit` of the stored file for a preview, long strings cut
    and at most PREVIEW_BYTES of them, and whether anything was cut or left out; GoneError
    when the file cannot be read."""
    rows = iter_rows(dataset_file(settings.storage_dir, dataset), bounds=bounds(settings))
    shown: list[dict[str, Any]] = []
    size, truncated = 0, False
    try:
        for _, row in islice(rows, offset, offset + limit):
            short, cut = shorten(row)
            size += len(json.dumps(short, ensure_ascii=False))
            if shown and size > PREVIEW_BYTES:
                return shown, True
            shown.append(short)
            truncated = truncated or cut
    except (DatasetError, FileNotFoundError) as exc:
        raise GoneError("file_missing", f"the dataset's file cannot be read: {exc}") from exc
    return shown, truncated


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
