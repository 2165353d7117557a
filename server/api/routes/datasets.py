"""/v1/datasets: upload (validated, kind detected), dry-run validation, list, rows, delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Query, UploadFile

from server.api.deps import DatasetDep, OwnerDep, SessionDep, SettingsDep
from server.db.datasets import list_datasets
from server.db.models import Dataset
from server.schemas.common import DB_INT_MAX, ERRORS, Page
from server.schemas.datasets import DatasetOut, HubDatasetIn, RowsOut, ValidationOut
from server.services.datasets import dry_run, read_rows, receive, remove_dataset, store_dataset
from server.services.hub_datasets import register_hub_dataset

router = APIRouter(prefix="/v1/datasets", tags=["datasets"], responses=ERRORS)

UploadDep = Annotated[UploadFile, File(description="a .jsonl or .parquet file of one dataset kind")]


@router.post("", status_code=201, response_model=DatasetOut, summary="Upload a dataset")
def upload_dataset(
    file: UploadDep, session: SessionDep, owner: OwnerDep, settings: SettingsDep
) -> Dataset:
    """Stream the file to storage, validate every row, and keep it only if it is valid: a bad
    file answers 422 naming the first problem's line and field, and nothing is stored."""
    upload = receive(file.file, file.filename, settings)
    return store_dataset(session, owner, upload, file.filename or "", settings)


@router.post(
    "/hub", status_code=201, response_model=DatasetOut, summary="Register a Hugging Face dataset"
)
def register_hub(
    body: HubDatasetIn, session: SessionDep, owner: OwnerDep, settings: SettingsDep
) -> Dataset:
    """Read one config and split of a Hugging Face dataset, rename its columns onto gro's
    fields, validate every row and keep it as a dataset: a bad row answers 422 naming its row
    and field, and nothing is stored."""
    return register_hub_dataset(session, owner, body, settings)


@router.post("/validate", response_model=ValidationOut, summary="Validate a file (dry run)")
def validate_dataset(file: UploadDep, owner: OwnerDep, settings: SettingsDep) -> ValidationOut:
    """Every problem (up to 100, all counted) and the statistics; nothing is stored."""
    upload = receive(file.file, file.filename, settings)
    return dry_run(upload, settings)


@router.get("", response_model=Page[DatasetOut], summary="List datasets, newest first")
def get_datasets(
    session: SessionDep,
    owner: OwnerDep,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Page[DatasetOut]:
    rows, more = list_datasets(session, owner, after, limit)
    return Page.of([DatasetOut.model_validate(r) for r in rows], more)


@router.get("/{dataset_id}", response_model=DatasetOut, summary="Get a dataset")
def get_one(dataset: DatasetDep) -> Dataset:
    return dataset


@router.get("/{dataset_id}/rows", response_model=RowsOut, summary="Read rows of a dataset")
def get_rows(
    dataset: DatasetDep,
    settings: SettingsDep,
    offset: Annotated[int, Query(ge=0, le=DB_INT_MAX)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> RowsOut:
    """A preview: strings over 2,000 characters are cut (ending with their full length) and at
    most 1 MiB of rows is returned (`truncated` says either happened)."""
    rows, truncated = read_rows(dataset, settings, offset, limit)
    return RowsOut(data=rows, offset=offset, limit=limit, total=dataset.rows, truncated=truncated)


@router.delete("/{dataset_id}", summary="Delete a dataset")
def delete_dataset(
    dataset: DatasetDep, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    """Refused (409) while a queued or running job reads it."""
    remove_dataset(session, dataset, settings)
    return {"id": dataset.id, "object": "dataset.deleted", "deleted": True}
