"""Ids a client sees: `<prefix>-<10 time chars><12 random chars>`, sortable by creation time.

Ordering by id is ordering by creation (to the millisecond, random within one), so pages are
`WHERE id < :after ORDER BY id DESC` with the last id seen as the cursor.
"""

from __future__ import annotations

import secrets
import time

# Crockford's base32: no I, L, O, U, so ids read aloud and copied by hand survive.
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
PREFIXES = {
    "dataset": "ds",
    "job": "job",
    "evaluation": "eval",
    "checkpoint": "ckpt",
    "comparison": "cmp",
}


def _base32(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, digit = divmod(number, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def new_id(kind: str) -> str:
    """A fresh id for a `kind` of PREFIXES (`job-01jd...`)."""
    millis = time.time_ns() // 1_000_000
    return f"{PREFIXES[kind]}-{_base32(millis, 10)}{_base32(secrets.randbits(60), 12)}"
