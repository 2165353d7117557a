"""Reads a W&B run's transaction log (`run-<id>.wandb`) back as its protobuf records.

wandb 0.31 writes the log from its Go core and ships no Python reader, so the tests read it
here: LevelDB's log format (32 KiB blocks of records, each a 7-byte header of CRC-32, length
and chunk type, a record split across blocks as first/middle/last chunks) behind a 7-byte file
header (`:W&B`, magic 0xBEE1, version 0). The records are wandb's own `Record` messages.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

_BLOCK = 32 * 1024
_HEADER = 7
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def _chunks(raw: bytes) -> list[tuple[int, bytes]]:
    """(type, payload) of every chunk, checksums verified."""
    assert raw[:4] == b":W&B" and struct.unpack("<H", raw[4:6])[0] == 0xBEE1, "not a .wandb log"
    chunks, pos = [], _HEADER
    while pos + _HEADER <= len(raw):
        left = _BLOCK - pos % _BLOCK
        if left < _HEADER:  # a block's tail too short for a header is padding
            pos += left
            continue
        checksum, length, kind = struct.unpack("<IHB", raw[pos : pos + _HEADER])
        if kind == 0 and length == 0:  # zero padding up to the block's end
            pos += left
            continue
        payload = raw[pos + _HEADER : pos + _HEADER + length]
        assert zlib.crc32(payload, zlib.crc32(bytes([kind]))) & 0xFFFFFFFF == checksum
        chunks.append((kind, payload))
        pos += _HEADER + length
    return chunks


def read_records(path: Path) -> list[Any]:
    from wandb.proto import wandb_internal_pb2

    records, parts = [], b""
    for kind, payload in _chunks(Path(path).read_bytes()):
        parts = payload if kind in (_FULL, _FIRST) else parts + payload
        if kind in (_FULL, _LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(parts)
            records.append(record)
    return records
