"""/v1/checkpoints/{id}/download: a checkpoint's model directory as a streamed tar."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from server.api.deps import SessionDep, SettingsDep, optional_owner
from server.api.errors import ApiError, not_found
from server.db.models import Checkpoint, Owner
from server.db.outputs import get_checkpoint
from server.schemas.common import ERRORS
from server.storage import signature_valid, tar_stream

router = APIRouter(prefix="/v1/checkpoints", tags=["checkpoints"], responses=ERRORS)


@router.get(
    "/{checkpoint_id}/download",
    summary="Download a checkpoint (tar)",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-tar": {}}, "description": "a tar stream"}},
)
def download(
    checkpoint_id: str,
    session: SessionDep,
    settings: SettingsDep,
    owner: Annotated[Owner | None, Depends(optional_owner)],
    expires: int | None = None,
    signature: str | None = None,
) -> StreamingResponse:
    """With an API key, or with the signed `expires` and `signature` of a checkpoint's
    `download_url` (browser links cannot send a key)."""
    if owner is not None:
        checkpoint = get_checkpoint(session, owner, checkpoint_id)
    elif signature_valid(settings.secret_key, checkpoint_id, expires, signature):
        checkpoint = session.scalar(select(Checkpoint).where(Checkpoint.id == checkpoint_id))
    else:
        raise ApiError(401, "unauthorized", "send an API key or use a signed, unexpired link")
    if checkpoint is None:
        raise not_found("checkpoint", checkpoint_id)
    directory = Path(settings.storage_dir) / checkpoint.path
    if not directory.is_dir():
        raise ApiError(410, "checkpoint_gone", f"checkpoint {checkpoint_id} was rotated away")
    name = f"{checkpoint.job_id}-step-{checkpoint.step}"
    return StreamingResponse(
        tar_stream(directory, name),
        media_type="application/x-tar",
        headers={"Content-Disposition": f'attachment; filename="{name}.tar"'},
    )
