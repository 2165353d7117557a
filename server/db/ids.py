"""Ids a client sees: `<prefix>-<10 time chars><12 random chars>`, sortable by creation time.

Ordering by id is ordering by creation, so pages are `WHERE id < :after ORDER BY id DESC` with the
last id seen as the cursor. Within one process ids are strictly increasing: several made in the
same millisecond (a comparison's jobs) count up from the first one's random part, so they list in
the order they were made.
"""

from __future__ import annotations

import secrets
import threading
import time

# Crockford's base32: no I, L, O, U, so ids read aloud and copied by hand survive.
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
PREFIXES = {
    "dataset": "ds",
    "job": "job",
    "evaluation": "eval",
    "generation": "gen",
    "checkpoint": "ckpt",
    "comparison": "cmp",
}


def _base32(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, digit = divmod(number, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


_RANDOM_BITS = 60
_lock = threading.Lock()
_last: tuple[int, int] = (0, 0)  # (millis, random part) of the last id this process made


def _next_stamp() -> tuple[int, int]:
    global _last
    with _lock:
        millis = time.time_ns() // 1_000_000
        last_millis, last_random = _last
        if millis <= last_millis and last_random + 1 < 1 << _RANDOM_BITS:
            millis, random = last_millis, last_random + 1
        else:
            # A fresh random part below half the range leaves room to count up after it.
            random = secrets.randbits(_RANDOM_BITS - 1)
            millis = max(millis, last_millis + (millis <= last_millis))
        _last = (millis, random)
        return _last


def new_id(kind: str) -> str:
    """A fresh id for a `kind` of PREFIXES (`job-01jd...`), after every id made before it here."""
    millis, random = _next_stamp()
    return f"{PREFIXES[kind]}-{_base32(millis, 10)}{_base32(random, 12)}"
