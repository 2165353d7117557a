"""Series kept in process and brought up to date from their new points answer exactly what
the same points read afresh answer: through a short series growing past max_points, width
doublings, null values, tied values, a rewritten point and a resume's delete."""

from __future__ import annotations

import math

import numpy as np
import pytest

from server.config import Settings
from server.db import outputs
from server.db.models import Job
from server.db.session import session_scope
from server.services.series_cache import SeriesCache, SeriesState
from tests.server.conftest import PAIRS, Api, dpo_spec

MAX_POINTS = 40  # 19 buckets: several doublings within a few hundred steps


@pytest.fixture
def job_id(alice: Api) -> str:
    return alice.job(dpo_spec(alice.dataset(PAIRS)))["id"]


def _expected(
    points: dict[int, float | None], max_points: int = MAX_POINTS
) -> list[tuple[int, float | None]]:
    """The answer by definition: all points if they fit, else the first and last and each
    aligned bucket's extremes, for the narrowest power-of-two width that fits
    (max_points - 2) / 2 buckets (at least one)."""
    steps = sorted(points)
    if len(steps) <= max_points:
        return [(s, points[s]) for s in steps]
    width = 1
    while steps[-1] // width - steps[0] // width + 1 > max(1, (max_points - 2) // 2):
        width *= 2
    kept = {steps[0], steps[-1]}
    buckets: dict[int, list[int]] = {}
    for s in steps:
        if points[s] is not None:
            buckets.setdefault(s // width, []).append(s)
    for inside in buckets.values():
        kept.add(min(inside, key=lambda s: (points[s], s)))
        kept.add(min(inside, key=lambda s: (-points[s], s)))
    return [(s, points[s]) for s in sorted(kept)]


def _read_all(settings: Settings, cache: SeriesCache, job_id: str, names: list[str]) -> dict:
    with session_scope(settings.database_url) as session:
        epoch = session.get(Job, job_id).metrics_epoch
        read = cache.read(session, job_id, epoch, names, MAX_POINTS)
    return {
        name: (list(zip(steps, values, strict=True)), n)
        for name, (steps, values, n) in read.items()
    }


def _read(settings: Settings, cache: SeriesCache, job_id: str) -> tuple[list, int]:
    return _read_all(settings, cache, job_id, ["s"])["s"]


@pytest.mark.parametrize("spread", [True, False], ids=["spread", "tied"])
def test_a_series_kept_across_flushes_answers_as_one_read_afresh(
    settings: Settings, job_id: str, spread: bool
) -> None:
    rng = np.random.default_rng(1)
    kept, step = SeriesCache(), 0
    stored: dict[str, dict[int, float | None]] = {"s": {}, "t": {}}
    for flush in range(30):  # 30 flushes of 1-40 points at gaps of 1-5 steps
        batch = []
        for _ in range(int(rng.integers(1, 41))):
            step += int(rng.integers(1, 6))
            # t, an evaluation-like series: a point now and then, and stops after flush 20
            for name in ("s", "t") if rng.random() < 0.2 and flush < 20 else ("s",):
                value = float(rng.normal() if spread else rng.integers(0, 3))
                value = None if rng.random() < 0.05 else value
                batch.append((step, name, math.nan if value is None else value))
                stored[name][step] = value
        with session_scope(settings.database_url) as session:
            outputs.write_metrics(session, job_id, batch)
        read = _read_all(settings, kept, job_id, ["t", "s"])
        for name in ("s", "t"):
            points, total = read[name]
            assert total == len(stored[name]), (flush, name)
            assert points == _expected(stored[name]), (flush, name)
        assert _read_all(settings, SeriesCache(), job_id, ["s", "t"]) == read  # a cold start
    assert len(read["s"][0]) <= MAX_POINTS < len(stored["s"])


@pytest.mark.parametrize("seed", range(12))
def test_a_state_fed_flush_by_flush_answers_by_definition(seed: int) -> None:
    """Tied values, flushes of nulls only, jumps that double the width several times in one
    flush, max_points down to 2: every flush's columns are the definition's, though each
    bucket before the last is emitted once and kept until the width changes."""
    rng = np.random.default_rng(seed)
    max_points = int(rng.integers(2, 60))
    state, stored, step = SeriesState(max_points), {}, int(rng.integers(0, 50))
    for flush in range(60):
        nulls = rng.random() < 0.15
        batch = []
        for _ in range(int(rng.integers(1, 30))):
            step += int(rng.choice([1, 1, 1, 2, 7, 300]))
            value = None if nulls or rng.random() < 0.1 else float(rng.integers(0, 4))
            batch.append((step, value))
            stored[step] = value
        state.add(batch)
        steps, values = state.columns()
        assert list(zip(steps, values, strict=True)) == _expected(stored, max_points), flush
        assert state.count == len(stored)


def test_a_rewritten_point_and_a_resumes_delete_start_the_series_again(
    settings: Settings, job_id: str
) -> None:
    kept = SeriesCache()
    stored = {s: float(s % 7) for s in range(1, 301)}
    with session_scope(settings.database_url) as session:
        outputs.write_metrics(session, job_id, [(s, "s", v) for s, v in stored.items()])
    assert _read(settings, kept, job_id)[0] == _expected(stored)
    stored[150] = 100.0  # a replayed write with another value: a new highest point
    with session_scope(settings.database_url) as session:
        outputs.write_metrics(session, job_id, [(150, "s", 100.0)])
    assert (150, 100.0) in _read(settings, kept, job_id)[0]
    with session_scope(settings.database_url) as session:
        outputs.delete_after(session, job_id, 120)  # a resumed attempt forgets later points
    stored = {s: v for s, v in stored.items() if s <= 120}
    points, total = _read(settings, kept, job_id)
    assert total == 120 and points == _expected(stored)


def test_appends_leave_the_epoch_and_rewrites_bump_it(settings: Settings, job_id: str) -> None:
    def epoch() -> int:
        with session_scope(settings.database_url) as session:
            return session.get(Job, job_id).metrics_epoch

    with session_scope(settings.database_url) as session:
        outputs.write_metrics(session, job_id, [(1, "s", 1.0), (2, "s", 2.0), (1, "t", 0.0)])
    start = epoch()
    with session_scope(settings.database_url) as session:
        outputs.write_metrics(session, job_id, [(3, "s", 3.0), (2, "t", 0.0), (1, "u", 0.0)])
    assert epoch() == start
    with session_scope(settings.database_url) as session:
        outputs.write_metrics(session, job_id, [(4, "s", 4.0), (2, "s", 2.5)])
    assert epoch() == start + 1


def test_an_answer_is_emitted_only_under_its_states_lock_or_before_it_is_shared(
    settings: Settings, job_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """columns() updates the state's kept answer, so two polls must never run it on one state
    at once: each call is made holding the state's lock, or before any other poll can find
    the state (a cold start)."""
    kept, calls = SeriesCache(), []
    emit = SeriesState.columns

    def checked(state: SeriesState) -> tuple:
        shared = any(held is state for held in kept._states.values())
        calls.append(state.lock.locked() or not shared)
        return emit(state)

    monkeypatch.setattr(SeriesState, "columns", checked)
    for flush in range(3):  # a cold start, then two refreshes
        with session_scope(settings.database_url) as session:
            outputs.write_metrics(session, job_id, [(flush, "s", 1.0), (flush, "t", 2.0)])
        _read_all(settings, kept, job_id, ["s", "t"])
    assert len(calls) == 6 and all(calls), calls
