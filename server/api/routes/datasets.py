"""/v1/datasets: upload (validated, kind detected), dry-run validation, list, rows, delete."""

from __future__ import annotations

from itertools import islice
from typing import Annotated, Any

from fastapi import APIRouter, File, Query, UploadFile

from gro_core.data import DatasetError, iter_rows, validate_file
from server.api.deps import OwnerDep, SessionDep, SettingsDep
from server.api.errors import ApiError, not_found
from server.db.datasets import (
    active_jobs_using,
    dataset_dir,
    dataset_file,
    get_dataset,
    list_datasets,
)
from server.db.models import Dataset
from server.schemas.common import ERRORS, Page
from server.schemas.datasets import DatasetOut, RowsOut, ValidationOut
from server.services.datasets import problems, store_dataset
from server.storage import receive_upload, remove_tree

router = APIRouter(prefix="/v1/datasets", tags=["datasets"], responses=ERRORS)

UploadDep = Annotated[UploadFile, File(description="a .jsonl or .parquet file of one dataset kind")]


@router.post("", status_code=201, response_model=DatasetOut, summary="Upload a dataset")
def upload_dataset(
    file: UploadDep, session: SessionDep, owner: OwnerDep, settings: SettingsDep
) -> Dataset:
    """Stream the file to storage, validate every row, and keep it only if it is valid: a bad
    file answers 422 naming the first problem's line and field, and nothing is stored."""
    upload = receive_upload(
        file.file, file.filename, settings.storage_dir, settings.max_upload_bytes
    )
    return store_dataset(session, owner, upload, file.filename or "", settings)


@router.post("/validate", response_model=ValidationOut, summary="Validate a file (dry run)")
def validate_dataset(file: UploadDep, owner: OwnerDep, settings: SettingsDep) -> ValidationOut:
    """Every problem (up to 100, all counted) and the statistics; nothing is stored."""
    upload = receive_upload(
        file.file, file.filename, settings.storage_dir, settings.max_upload_bytes
    )
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


@router.get("", response_model=Page[DatasetOut], summary="List datasets, newest first")
def get_datasets(
    session: SessionDep,
    owner: OwnerDep,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Page[DatasetOut]:
    rows, more = list_datasets(session, owner, after, limit)
    data = [DatasetOut.model_validate(r) for r in rows]
    return Page.of(data, more)


def _owned(session: SessionDep, owner: OwnerDep, dataset_id: str) -> Dataset:
    dataset = get_dataset(session, owner, dataset_id)
    if dataset is None:
        raise not_found("dataset", dataset_id)
    return dataset


@router.get("/{dataset_id}", response_model=DatasetOut, summary="Get a dataset")
def get_one(dataset_id: str, session: SessionDep, owner: OwnerDep) -> Dataset:
    return _owned(session, owner, dataset_id)


@router.get("/{dataset_id}/rows", response_model=RowsOut, summary="Read rows of a dataset")
def get_rows(
    dataset_id: str,
    session: SessionDep,
    owner: OwnerDep,
    settings: SettingsDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> RowsOut:
    dataset = _owned(session, owner, dataset_id)
    try:
        rows = [
            row
            for _, row in islice(
                iter_rows(dataset_file(settings.storage_dir, dataset)), offset, offset + limit
            )
        ]
    except (DatasetError, FileNotFoundError) as exc:
        raise ApiError(410, "file_missing", f"the dataset's file cannot be read: {exc}") from exc
    return RowsOut(data=rows, offset=offset, limit=limit, total=dataset.rows)


@router.delete("/{dataset_id}", summary="Delete a dataset")
def delete_dataset(
    dataset_id: str, session: SessionDep, owner: OwnerDep, settings: SettingsDep
) -> dict[str, Any]:
    """Refused (409) while a queued or running job reads it."""
    dataset = _owned(session, owner, dataset_id)
    users = active_jobs_using(session, dataset.id)
    if users:
        raise ApiError(
            409,
            "dataset_in_use",
            f"dataset {dataset_id} is used by active jobs: {', '.join(users)}",
        )
    session.delete(dataset)
    session.commit()
    remove_tree(dataset_dir(settings.storage_dir, dataset_id))  # after the commit: no dangling row
    return {"id": dataset_id, "object": "dataset.deleted", "deleted": True}
