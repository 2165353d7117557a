"""/v1/checkpoints/{id}/download: a checkpoint's directory, or it exported as a plain model
(`format=model`: gro_core.models.export), as a streamed tar."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from server.api.deps import CheckpointDep, SettingsDep
from server.errors import GoneError, InvalidRequestError
from server.schemas.common import ERRORS
from server.storage import tar_stream

router = APIRouter(prefix="/v1/checkpoints", tags=["checkpoints"], responses=ERRORS)


@router.get(
    "/{checkpoint_id}/download",
    summary="Download a checkpoint (tar)",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-tar": {}}, "description": "a tar stream"}},
)
def download(
    checkpoint: CheckpointDep,
    settings: SettingsDep,
    format: Literal["checkpoint", "model"] = Query(
        "checkpoint",
        description="checkpoint: the directory as saved (with the trainer state, to resume); "
        "model: a plain save_pretrained model, as `gro export` writes it",
    ),
    merge_lora: bool = Query(False, description="format=model: merge a LoRA job's adapters"),
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Query(
        "auto", description="format=model: the weights' dtype (auto: float32)"
    ),
) -> StreamingResponse:
    """With an API key, or with the signed `expires` and `signature` of a checkpoint's
    `download_url` (browser links cannot send a key)."""
    directory = Path(settings.storage_dir) / checkpoint.path
    if not directory.is_dir():
        raise GoneError("checkpoint_gone", f"checkpoint {checkpoint.id} was rotated away")
    name = f"{checkpoint.job_id}-step-{checkpoint.step}"
    stream: Iterator[bytes]
    if format == "model":
        name += "-model"
        stream = _exported(directory, name, merge_lora=merge_lora, dtype=dtype)
    elif merge_lora or dtype != "auto":
        field = "merge_lora" if merge_lora else "dtype"
        raise InvalidRequestError(
            "invalid_parameter", f"{field} applies to format=model only", field=field
        )
    else:
        stream = tar_stream(directory, name)
    return StreamingResponse(
        stream,
        media_type="application/x-tar",
        headers={"Content-Disposition": f'attachment; filename="{name}.tar"'},
    )


def _exported(directory: Path, name: str, *, merge_lora: bool, dtype: str) -> Iterator[bytes]:
    """The checkpoint exported into a temporary directory (before the response starts, so a
    refusal is an error response), streamed, then removed."""
    from gro_core.models.export import export_checkpoint

    scratch = Path(tempfile.mkdtemp(prefix="gro-export-"))
    try:
        export_checkpoint(directory, scratch / name, merge_lora=merge_lora, dtype=dtype)
    except ValueError as exc:  # not a model directory: nothing to export
        shutil.rmtree(scratch, ignore_errors=True)
        raise InvalidRequestError("cannot_export", str(exc)) from exc
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise

    def stream() -> Iterator[bytes]:
        try:
            yield from tar_stream(scratch / name, name)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    return stream()
