"""Files on the shared storage directory: uploads, run directories, signed download links and
tar streams of checkpoints. Paths are built from ids only; user file names never reach disk."""

from __future__ import annotations

import hashlib
import hmac
import os
import shutil
import tarfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from server.errors import InvalidRequestError, TooLargeError

CHUNK = 1 << 20
UPLOAD_FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet", ".pq": "parquet"}


@dataclass
class StoredUpload:
    path: Path
    format: str
    bytes: int
    sha256: str

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def upload_format(filename: str | None) -> str:
    """jsonl or parquet from the uploaded file's extension; InvalidRequestError naming `file`
    otherwise."""
    suffix = Path(filename or "").suffix.lower()
    if suffix not in UPLOAD_FORMATS:
        known = ", ".join(UPLOAD_FORMATS)
        raise InvalidRequestError(
            "unsupported_format",
            f"cannot tell the format of {filename!r}: upload a {known} file",
            field="file",
        )
    return UPLOAD_FORMATS[suffix]


def sweep_uploads(storage: Path, max_age_s: float) -> int:
    """Remove the files of `storage/tmp/` not written for `max_age_s` seconds: uploads whose
    request died (an API killed mid-upload). An upload in progress writes every chunk, so
    its file never looks old; other API processes' uploads are safe too. How many went."""
    removed, cutoff = 0, time.time() - max_age_s
    try:
        entries = list(os.scandir(storage / "tmp"))
    except FileNotFoundError:
        return 0
    for entry in entries:
        try:
            if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)
                removed += 1
        except FileNotFoundError:  # another process swept it first
            continue
    return removed


def receive_upload(
    source: BinaryIO,
    filename: str | None,
    storage: Path,
    limit: int,
    orphan_age_s: float | None = None,
) -> StoredUpload:
    """Copy an upload to `storage/tmp/` in chunks, hashing it; TooLargeError past `limit` bytes.
    With `orphan_age_s`, first sweep the orphans of dead requests (`sweep_uploads`)."""
    fmt = upload_format(filename)
    tmp = storage / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    if orphan_age_s is not None:
        sweep_uploads(storage, orphan_age_s)
    target = tmp / f"{uuid.uuid4().hex}.{fmt}"
    digest, size = hashlib.sha256(), 0
    try:
        with target.open("wb") as out:
            while chunk := source.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise TooLargeError(
                        "upload_too_large", f"the file is over the {limit}-byte upload limit"
                    )
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return StoredUpload(target, fmt, size, digest.hexdigest())


def move_into(upload: StoredUpload, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    upload.path.replace(destination)


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


# --- signed links --------------------------------------------------------------------------


def sign(secret: str, resource: str, expires: int) -> str:
    message = f"{resource}:{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_query(secret: str, resource: str, ttl_s: int = 3600) -> str:
    """`expires=...&signature=...` granting access to `resource` for `ttl_s` seconds."""
    expires = int(time.time()) + ttl_s
    return f"expires={expires}&signature={sign(secret, resource, expires)}"


def signature_valid(
    secret: str,
    resource: str,
    expires: int | None,
    signature: str | None,
    max_lifetime_s: float,
) -> bool:
    """Whether the link is signed with `secret`, unexpired, and expires within
    `max_lifetime_s` from now (a forged or leaked link cannot be made to last forever)."""
    now = time.time()
    if expires is None or signature is None or not now <= expires <= now + max_lifetime_s:
        return False
    return hmac.compare_digest(sign(secret, resource, expires), signature)


# --- tar streams ---------------------------------------------------------------------------

_BLOCK, _RECORD = 512, 10240


def _tar_header(path: Path, name: str) -> bytes:
    stat = path.stat()
    info = tarfile.TarInfo(name)
    info.mode, info.mtime = stat.st_mode & 0o777, int(stat.st_mtime)
    if path.is_dir():
        info.type = tarfile.DIRTYPE
    else:
        info.size = stat.st_size
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def tar_stream(directory: Path, arcname: str) -> Iterator[bytes]:
    """An uncompressed tar of `directory` (weights barely compress), written as it is sent:
    one header, the file in 1 MiB chunks, padding; memory stays flat for any model size."""
    written = 0
    for path in sorted(directory.rglob("*")):
        header = _tar_header(path, f"{arcname}/{path.relative_to(directory)}")
        yield header
        written += len(header)
        if path.is_dir():
            continue
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                written += len(chunk)
                yield chunk
        padding = -written % _BLOCK
        written += padding
        yield b"\0" * padding
    end = 2 * _BLOCK
    yield b"\0" * (end + (-(written + end) % _RECORD))
