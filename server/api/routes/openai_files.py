"""/v1/files, OpenAI's Files API for `purpose: fine-tune`: each file is a gro dataset (the same
upload, validation and storage as /v1/datasets), so its id works in either API."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import FileResponse

from server.api.deps import DatasetDep, OwnerDep, SessionDep, SettingsDep
from server.db.datasets import dataset_file
from server.db.openai_reads import datasets_page
from server.errors import InvalidRequestError
from server.schemas.common import ERRORS
from server.schemas.openai import FileDeleted, FileObject, OpenAIList
from server.services.datasets import receive, remove_dataset, store_dataset
from server.services.openai_out import file_out

router = APIRouter(prefix="/v1/files", tags=["openai"], responses=ERRORS)
PURPOSE = "fine-tune"


@router.post("", response_model=FileObject, summary="Upload a file (OpenAI)")
def create(
    file: Annotated[UploadFile, File(description="a .jsonl file of OpenAI's or gro's rows")],
    purpose: Annotated[str, Form(description="fine-tune")],
    session: SessionDep,
    owner: OwnerDep,
    settings: SettingsDep,
) -> FileObject:
    """Stored as a dataset after every row is validated (400 naming the line and field)."""
    if purpose != PURPOSE:
        raise InvalidRequestError(
            "invalid_value",
            f"purpose: gro keeps fine-tuning data only; use 'fine-tune', not {purpose!r}",
            field="purpose",
        )
    upload = receive(file.file, file.filename, settings)
    return file_out(store_dataset(session, owner, upload, file.filename or "", settings))


@router.get("", response_model=OpenAIList[FileObject], summary="List files (OpenAI)")
def list_all(
    session: SessionDep,
    owner: OwnerDep,
    purpose: str | None = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 10_000,
    order: Literal["asc", "desc"] = "desc",
) -> OpenAIList[FileObject]:
    if purpose not in (None, PURPOSE):
        return OpenAIList.of([], False)
    rows, more = datasets_page(session, owner, after, limit, order)
    return OpenAIList.of([file_out(d) for d in rows], more)


@router.get("/{dataset_id}", response_model=FileObject, summary="Get a file (OpenAI)")
def get_one(dataset: DatasetDep) -> FileObject:
    return file_out(dataset)


@router.get("/{dataset_id}/content", summary="A file's content (OpenAI)")
def content(dataset: DatasetDep, settings: SettingsDep) -> FileResponse:
    return FileResponse(
        dataset_file(settings.storage_dir, dataset), filename=dataset.filename or None
    )


@router.delete("/{dataset_id}", response_model=FileDeleted, summary="Delete a file (OpenAI)")
def delete(dataset: DatasetDep, session: SessionDep, settings: SettingsDep) -> FileDeleted:
    """Refused (409) while a queued, running or paused job reads it."""
    remove_dataset(session, dataset, settings)
    return FileDeleted(id=dataset.id)
