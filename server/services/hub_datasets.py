"""POST /v1/datasets/hub: read a Hugging Face dataset by name, validate its rows (named by
row and field), and keep it as an ordinary stored dataset (a JSONL file of its rows in gro's
field names), within the server's row, byte and storage limits."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy.orm import Session

from gro_core.data import DataIssue, DatasetError
from gro_core.data.hub import hub_records, validate_hub
from gro_core.spec.hub import HubDataset, is_path
from server.config import Settings
from server.db.models import Dataset, Owner
from server.errors import InvalidRequestError, TooLargeError
from server.schemas.common import Problem
from server.schemas.datasets import HubDatasetIn
from server.services.datasets import bounds, store_dataset
from server.storage import StoredUpload


def _is_local(name: str) -> bool:
    """Whether `datasets` would read `name` from this machine (a path, or a Hub id that
    happens to be a local directory: the library looks there first)."""
    try:
        return is_path(name) or Path(name).exists()
    except (OSError, ValueError):  # too long, or bytes no path holds: never a Hub id either
        return True


def _under(name: str, roots: Sequence[Path]) -> bool:
    """Whether the path `name` lies (links and `..` resolved) under one of `roots`."""
    try:
        resolved = Path(name).expanduser().resolve()
    except (OSError, ValueError, RuntimeError):
        return False
    return any(resolved.is_relative_to(Path(root).resolve()) for root in roots)


def _source(body: HubDatasetIn, settings: Settings) -> HubDataset:
    """The HubDataset the request names; a local directory only under the operator's roots
    (`datasets` reads a local directory of that name before the Hub, so a Hub id that is also
    a local path counts as one)."""
    try:
        source = HubDataset(hub=body.name, **body.model_dump(exclude={"name"}))
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        key = ".".join(str(p) for p in first["loc"]).replace("hub", "name", 1)
        message = str(first["msg"]).removeprefix("Value error, ")
        raise InvalidRequestError("invalid_request", f"{key}: {message}", field=key) from exc
    if _is_local(source.hub) and not _under(source.hub, settings.hub_dataset_roots):
        roots = ", ".join(str(r) for r in settings.hub_dataset_roots) or "none are allowed here"
        msg = f"{source.hub!r} is a local path outside the allowed dataset roots ({roots})"
        raise InvalidRequestError("path_not_allowed", msg, field="name")
    return source


def _refusal(issues: Sequence[DataIssue], error_count: int) -> InvalidRequestError:
    """The first problem, in the request's terms: `row` and field, or the key at fault."""
    first = issues[0]
    field = first.field if first.line is not None else (first.field or "name")
    details = [Problem(**issue.to_dict()) for issue in issues]
    message = first.describe("row") if first.line is not None else first.message
    if error_count > 1:
        message += f" (and {error_count - 1} more)"
    return InvalidRequestError(first.code, message, line=first.line, field=field, details=details)


def _materialise(source: HubDataset, settings: Settings) -> StoredUpload:
    """The split's rows as a JSONL file under storage/tmp/, hashed; TooLargeError past the
    upload limit (the file is what an upload of the same rows would be)."""
    tmp = settings.storage_dir / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    target = tmp / f"{uuid.uuid4().hex}.jsonl"
    digest, size = hashlib.sha256(), 0
    try:
        with target.open("wb") as out:
            for _, row in hub_records(source, bounds(settings)):
                line = (json.dumps(row, ensure_ascii=False) + "\n").encode()
                size += len(line)
                if size > settings.max_upload_bytes:
                    msg = f"the dataset is over the {settings.max_upload_bytes}-byte upload limit"
                    raise TooLargeError("upload_too_large", msg)
                digest.update(line)
                out.write(line)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return StoredUpload(target, "jsonl", size, digest.hexdigest())


def register_hub_dataset(
    session: Session, owner: Owner, body: HubDatasetIn, settings: Settings
) -> Dataset:
    """Validate the named split row by row and store it as a dataset; nothing is stored when
    any row is bad (422 naming the first one's row and field) or the split cannot be read."""
    source = _source(body, settings)
    report = validate_hub(source, bounds=bounds(settings))
    if not report.ok:
        raise _refusal(report.errors, report.error_count)
    try:
        upload = _materialise(source, settings)
    except DatasetError as exc:  # the split changed or vanished between the two reads
        raise _refusal(exc.issues, exc.error_count) from exc
    return store_dataset(session, owner, upload, source.label(), settings)
