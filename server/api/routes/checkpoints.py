"""/v1/checkpoints/{id}/download: a checkpoint's model directory as a streamed tar."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from server.api.deps import CheckpointDep, SettingsDep
from server.errors import GoneError
from server.schemas.common import ERRORS
from server.storage import tar_stream

router = APIRouter(prefix="/v1/checkpoints", tags=["checkpoints"], responses=ERRORS)


@router.get(
    "/{checkpoint_id}/download",
    summary="Download a checkpoint (tar)",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-tar": {}}, "description": "a tar stream"}},
)
def download(checkpoint: CheckpointDep, settings: SettingsDep) -> StreamingResponse:
    """With an API key, or with the signed `expires` and `signature` of a checkpoint's
    `download_url` (browser links cannot send a key)."""
    directory = Path(settings.storage_dir) / checkpoint.path
    if not directory.is_dir():
        raise GoneError("checkpoint_gone", f"checkpoint {checkpoint.id} was rotated away")
    name = f"{checkpoint.job_id}-step-{checkpoint.step}"
    return StreamingResponse(
        tar_stream(directory, name),
        media_type="application/x-tar",
        headers={"Content-Disposition": f'attachment; filename="{name}.tar"'},
    )
