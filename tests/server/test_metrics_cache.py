"""Polling a job's metrics: answers come from a per-process cache until a metric write bumps the
job's metrics_version, carry an ETag that If-None-Match turns into 304, and never cross owners."""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import event

from server.config import Settings
from server.db import outputs
from server.db.session import get_engine, session_scope
from server.services.response_cache import Encoded, ResponseCache
from tests.server.conftest import PAIRS, Api, dpo_spec


@pytest.fixture
def job_id(alice: Api, settings: Settings) -> str:
    job_id = alice.job(dpo_spec(alice.dataset(PAIRS)))["id"]
    write(settings, job_id, [(s, name, float(s)) for s in range(1, 6) for name in ("a", "b")])
    return job_id


def write(settings: Settings, job_id: str, points: list[tuple[int, str, float]]) -> None:
    with session_scope(settings.database_url) as session:
        outputs.write_metrics(session, job_id, points)


@pytest.fixture
def metric_reads(settings: Settings) -> Iterator[list[str]]:
    """The SQL statements that read the metrics table, as the API runs them."""
    seen: list[str] = []

    def record(conn, cursor, statement: str, *args) -> None:
        if re.search(r"\bmetrics\b", statement):  # the table, not jobs.metrics_version
            seen.append(statement)

    engine = get_engine(settings.database_url)
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def test_an_unchanged_poll_reads_no_metric_rows(alice: Api, job_id: str, metric_reads: list):
    first = alice.get(f"/v1/jobs/{job_id}/metrics")
    assert first.status_code == 200 and metric_reads  # the first answer reads the points
    metric_reads.clear()
    again = alice.get(f"/v1/jobs/{job_id}/metrics")
    assert again.content == first.content
    assert metric_reads == []
    # Another query of the same job is its own entry.
    only_a = alice.get(f"/v1/jobs/{job_id}/metrics?names=a").json()
    assert list(only_a["series"]) == ["a"] and metric_reads


def test_every_metric_write_invalidates(alice: Api, settings: Settings, job_id: str):
    def series() -> dict:
        return alice.get(f"/v1/jobs/{job_id}/metrics").json()["series"]

    assert series()["a"]["steps"] == [1, 2, 3, 4, 5]
    write(settings, job_id, [(6, "a", 6.0)])  # a new point
    assert series()["a"] == {
        "steps": [1, 2, 3, 4, 5, 6],
        "values": [1, 2, 3, 4, 5, 6],
        "total_points": 6,
    }
    write(settings, job_id, [(2, "a", math.inf)])  # a rewritten point: the count is unchanged
    assert series()["a"]["values"] == [1, None, 3, 4, 5, 6]
    write(settings, job_id, [(1, "c", 0.5)])  # a new series
    assert alice.get(f"/v1/jobs/{job_id}/metrics").json()["names"] == ["a", "b", "c"]
    with session_scope(settings.database_url) as session:
        outputs.delete_after(session, job_id, 3)  # a resumed run forgets later points
    assert series()["a"]["steps"] == [1, 2, 3]


def test_a_matching_etag_gets_304_until_a_new_point(alice: Api, settings: Settings, job_id: str):
    path = f"/v1/jobs/{job_id}/metrics"
    first = alice.get(path)
    etag = first.headers["ETag"]
    assert etag.startswith('"') and "no-cache" in first.headers["Cache-Control"]
    for sent in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        unchanged = alice.get(path, headers={"If-None-Match": sent})
        assert unchanged.status_code == 304, sent
        assert unchanged.content == b"" and unchanged.headers["ETag"] == etag
    assert alice.get(path, headers={"If-None-Match": '"other"'}).status_code == 200
    # The tag names the query too: another query's answer is another body.
    assert alice.get(f"{path}?names=a", headers={"If-None-Match": etag}).status_code == 200
    write(settings, job_id, [(6, "b", 1.0)])
    changed = alice.get(path, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert changed.json()["series"]["b"]["steps"][-1] == 6


def test_another_owner_never_gets_a_cached_answer(alice: Api, bob: Api, admin: Api, job_id: str):
    path = f"/v1/jobs/{job_id}/metrics"
    cached = alice.get(path)
    etag = cached.headers["ETag"]
    assert bob.get(path).status_code == 404
    assert bob.get(path, headers={"If-None-Match": etag}).status_code == 404
    assert bob.get(path, headers={"If-None-Match": "*"}).status_code == 404
    # An admin may see every job: the same body, served from the same entry.
    assert admin.get(path).content == cached.content


def test_the_cache_keeps_the_newest_version_within_its_bytes():
    cache = ResponseCache(max_bytes=800)  # entries of up to 100 bytes
    built: list[str] = []

    def body(text: str) -> bytes:
        built.append(text)
        return text.encode().ljust(60)

    assert cache.get("k", 2, lambda: body("v2")).body.startswith(b"v2")
    assert cache.get("k", 2, lambda: body("again")).body.startswith(b"v2")
    assert cache.get("k", 1, lambda: body("v1")).body.startswith(b"v1")  # a late reader
    assert cache.get("k", 2, lambda: body("x")).body.startswith(b"v2")  # v1 did not replace v2
    assert built == ["v2", "v1"]
    assert cache.get("big", 1, lambda: b"x" * 101).body == b"x" * 101  # answered, not kept
    assert len(cache) == 1
    for i in range(20):  # 60-byte bodies: 13 fit, the least recently used go first
        cache.get(i, 0, lambda i=i: body(str(i)))
    assert len(cache) == 13 and cache._bytes <= 800
    built.clear()
    cache.get(19, 0, lambda: body("19"))
    cache.get(0, 0, lambda: body("0"))
    assert built == ["0"]


def test_etags_name_the_bytes():
    one, same, other = Encoded.of(b"{}"), Encoded.of(b"{}"), Encoded.of(b"[]")
    assert one.etag == same.etag != other.etag
    assert not one.matches(None) and not one.matches("") and not one.matches(other.etag)


def test_pollers_that_miss_together_wait_for_one_build():
    cache = ResponseCache(max_bytes=10_000)
    started, other_built = threading.Event(), threading.Event()
    builds: list[str] = []

    def slow() -> bytes:
        builds.append("first")
        started.set()
        other_built.wait(timeout=0.5)  # set only if the second poller builds too
        return b"{}"

    def second() -> bytes:
        builds.append("second")
        other_built.set()
        return b"{}"

    first = threading.Thread(target=cache.get, args=("k", 1, slow))
    first.start()
    started.wait()
    assert cache.get("k", 1, second).body == b"{}"
    first.join()
    assert builds == ["first"]


def test_while_a_newer_version_builds_pollers_get_the_one_it_replaces():
    cache = ResponseCache(max_bytes=10_000)
    cache.get("k", 1, lambda: b'{"v":1}')
    started, release = threading.Event(), threading.Event()

    def slow() -> bytes:
        started.set()
        assert release.wait(timeout=10)
        return b'{"v":2}'

    builder = threading.Thread(target=cache.get, args=("k", 2, slow))
    builder.start()
    assert started.wait(timeout=10)
    # Answered at once from version 1, neither waiting for the build nor building again.
    assert cache.get("k", 2, lambda: b"built twice").body == b'{"v":1}'
    release.set()
    builder.join(10)
    assert cache.get("k", 2, lambda: b"built twice").body == b'{"v":2}'
