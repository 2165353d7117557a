"""Encoded responses kept in process, each under a version its readers compare (a counter the
database bumps with every write), so a repeated poll costs no query beyond that version's."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass


@dataclass(frozen=True)
class Encoded:
    """A JSON body and its strong ETag (a hash of the bytes, so equal tags mean equal bodies)."""

    body: bytes
    etag: str

    @classmethod
    def of(cls, body: bytes) -> Encoded:
        return cls(body, f'"{hashlib.blake2b(body, digest_size=16).hexdigest()}"')

    def matches(self, if_none_match: str | None) -> bool:
        """Whether an If-None-Match header names this body (weak comparison, RFC 9110 13.1.2)."""
        if not if_none_match:
            return False
        tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
        return "*" in tags or self.etag in tags


class ResponseCache:
    """Least recently used first out, bounded by the bytes held. One entry per key: a newer
    version replaces an older one, and an older version never replaces a newer."""

    def __init__(self, max_bytes: int, build_locks: int = 64) -> None:
        self.max_bytes = max_bytes
        # A body over an eighth of the budget is not kept: it would push out many small ones.
        self.max_entry = max_bytes // 8
        self._entries: OrderedDict[Hashable, tuple[int, Encoded]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()  # sync routes run on a thread pool
        # Pollers that miss together (the first second after a worker's flush) wait for one
        # build of a key instead of each reading every point; keys share a lock by hash.
        self._building = [threading.Lock() for _ in range(build_locks)]

    def _held(self, key: Hashable, version: int | None) -> Encoded | None:
        """The body kept for `key` at `version` (None: at whichever version it is kept)."""
        with self._lock:
            held = self._entries.get(key)
            if held is None or (version is not None and held[0] != version):
                return None
            self._entries.move_to_end(key)
            return held[1]

    def get(self, key: Hashable, version: int, build: Callable[[], bytes]) -> Encoded:
        """The body cached for (key, version), else build() encoded and kept. While another
        thread builds the key, the body it replaces is the answer (one worker flush old):
        under load a build takes seconds, and 50 pollers queued behind it took 10 s."""
        encoded = self._held(key, version)
        if encoded is not None:
            return encoded
        lock = self._building[hash(key) % len(self._building)]
        if not lock.acquire(blocking=False):
            stale = self._held(key, None)
            if stale is not None:
                return stale
            lock.acquire()  # nothing to answer with yet: wait for that one build
        try:
            encoded = self._held(key, version)  # built while this thread waited
            if encoded is None:
                encoded = Encoded.of(build())
                self._put(key, version, encoded)
        finally:
            lock.release()
        return encoded

    def _put(self, key: Hashable, version: int, encoded: Encoded) -> None:
        if len(encoded.body) > self.max_entry:
            return
        with self._lock:
            held = self._entries.get(key)
            if held is not None:
                if held[0] > version:
                    return
                self._bytes -= len(self._entries.pop(key)[1].body)
            self._entries[key] = (version, encoded)
            self._bytes += len(encoded.body)
            while self._bytes > self.max_bytes:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= len(dropped.body)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)
