"""Downsampled metric series kept in process and brought up to date from the new points only.

A dashboard asks for every series of a running job about once a second, and every worker
flush (about one a second per job) changes all of them. Downsampling a series afresh reads
max_points rows and probes every bucket (25 series of 4,000 points: 150 ms per answer, the
API's main work under load). Here each (job, attempt, series, max_points) keeps its state:
- up to max_points points, all of them;
- past that, step buckets of a power-of-two width w aligned to multiples of w, at most
  (max_points − 2) / 2 of them, each holding its lowest and highest non-null point, plus the
  series' first and last points. A new point updates its own bucket; when the buckets no
  longer fit, w doubles and neighbours merge (the extremes of two buckets are the extremes of
  their union), so nothing is read twice.
A refresh reads the points past the last step seen, and the answer is rebuilt from the buckets
they changed only (SeriesState). The state starts from the database's own aggregate
(server.db.series, buckets of the same alignment) and is keyed by the job's metrics_epoch,
which every delete and every write over existing points bumps (a resumed attempt forgetting
the points past its checkpoint, a replayed write)."""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from server.db.series import (
    Point,
    aligned_extremes,
    points_after_each,
    series_ends,
    series_head,
)

_Key = tuple[str, int, str, int]  # job, metrics epoch, series name, max_points
Bucket = tuple[int, Point, Point]  # index (step // width), lowest and highest non-null point
Columns = tuple[list[int], list[float | None], int]  # steps, values, points stored


def _value(point: Point) -> float:
    return point[1]  # type: ignore[return-value]  # only non-null points reach a bucket


def _merge(held: Bucket, low: Point, high: Point) -> Bucket:
    """`held` widened by a later bucket's extremes; a tie keeps the held (earlier) point, as
    the database's ORDER BY value, step does."""
    _, held_low, held_high = held
    return (
        held[0],
        held_low if _value(held_low) <= _value(low) else low,
        held_high if _value(held_high) >= _value(high) else high,
    )


def _into(buckets: list[Bucket], index: int, low: Point, high: Point) -> None:
    """Add a bucket's extremes at `index`, no lower than the last bucket's: merged into the
    last when it has that index, else a new last bucket."""
    if buckets and buckets[-1][0] == index:
        buckets[-1] = _merge(buckets[-1], low, high)
    else:
        buckets.append((index, low, high))


@dataclass
class SeriesState:
    """One series as downsampled so far (module docstring). Buckets are a list in index order:
    a new point (past `last_step`) changes only the last bucket or adds one, so every bucket
    before the last is final until the width doubles, and its points are emitted once
    (`_sealed_*`); an answer costs the new buckets, not all of them."""

    max_points: int
    count: int = 0
    last_step: int = -1  # every point at or before it has been read
    raw: list[Point] | None = field(default_factory=list)  # None once bucketed
    width: int = 1
    buckets: list[Bucket] = field(default_factory=list)
    first: Point | None = None
    last: Point | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    _sealed: int = 0  # buckets[:_sealed] are in _sealed_steps / _sealed_values
    _sealed_width: int = 0
    _sealed_steps: list[int] = field(default_factory=list)
    _sealed_values: list[float | None] = field(default_factory=list)

    @property
    def max_buckets(self) -> int:
        return max(1, (self.max_points - 2) // 2)

    def add(self, points: list[Point]) -> None:
        """Fold in points (step order) past `last_step`."""
        if not points:
            return
        self.count += len(points)
        self.first = self.first or points[0]
        self.last, self.last_step = points[-1], points[-1][0]
        if self.raw is not None:
            self.raw += points
            if len(self.raw) <= self.max_points:
                return
            points, self.raw = self.raw, None
        self._fit()  # the width for the new last step first: each point is folded once
        self._fold(points)

    def _fold(self, points: list[Point]) -> None:
        width, buckets = self.width, self.buckets
        kept = (p for p in points if p[1] is not None)  # a null is never an extreme
        for index, run in itertools.groupby(kept, key=lambda p: p[0] // width):
            inside = list(run)
            # min and max return the first of equal points: the earliest step, as in _merge
            _into(buckets, index, min(inside, key=_value), max(inside, key=_value))

    def _fit(self) -> None:
        """Widen (doubling) until the buckets from the first step to the last fit, merging
        neighbours in one pass: the extremes of a union are the extremes of its parts."""
        assert self.first is not None and self.last is not None
        factor = 1
        lo, hi = self.first[0], self.last[0]
        while hi // (self.width * factor) - lo // (self.width * factor) + 1 > self.max_buckets:
            factor *= 2
        if factor == 1:
            return
        self.width *= factor
        merged: list[Bucket] = []
        for index, low, high in self.buckets:
            _into(merged, index // factor, low, high)
        self.buckets = merged

    def columns(self) -> tuple[list[int], list[float | None]]:
        """The points to answer (steps, values), in step order."""
        if self.raw is not None:
            return [p[0] for p in self.raw], [p[1] for p in self.raw]
        if self._sealed_width != self.width:  # a doubling merged them: emit afresh
            self._sealed, self._sealed_width = 0, self.width
            self._sealed_steps, self._sealed_values = [], []
        final = len(self.buckets) - 1
        _emit(self.buckets[self._sealed : final], self._sealed_steps, self._sealed_values)
        self._sealed = max(self._sealed, final)
        steps, values = list(self._sealed_steps), list(self._sealed_values)
        _emit(self.buckets[max(final, 0) :], steps, values)
        assert self.first is not None and self.last is not None
        if not steps or steps[0] != self.first[0]:
            steps.insert(0, self.first[0])
            values.insert(0, self.first[1])
        if steps[-1] != self.last[0]:
            steps.append(self.last[0])
            values.append(self.last[1])
        return steps, values


def _emit(buckets: list[Bucket], steps: list[int], values: list[float | None]) -> None:
    """Append the buckets' extremes in step order (one point where both are the same)."""
    for _, low, high in buckets:
        if low[0] == high[0]:
            pair: tuple[Point, ...] = (low,)
        else:
            pair = (low, high) if low[0] < high[0] else (high, low)
        for step, value in pair:
            steps.append(step)
            values.append(value)


def _start(session: Session, job_id: str, name: str, max_points: int) -> SeriesState:
    """A state from the database: all points of a short series, else its first and last
    points, count, and the aligned buckets' extremes aggregated in the database."""
    state = SeriesState(max_points)
    head = series_head(session, job_id, name, max_points + 1)
    if len(head) <= max_points:
        state.add(head)
        return state
    first, last = series_ends(session, job_id, name)
    state.raw, state.first, state.last, state.last_step = None, first, last, last[0]
    state._fit()  # the width for the steps from first to last
    extremes, state.count = aligned_extremes(session, job_id, name, first[0], last[0], state.width)
    for point in sorted(extremes):  # step order: a tie between extremes keeps the earliest
        _into(state.buckets, point[0] // state.width, point, point)
    return state


class SeriesCache:
    """States by (job, metrics epoch, name, max_points), least recently used first out."""

    def __init__(self, max_series: int = 20_000) -> None:
        self.max_series = max_series
        self._states: OrderedDict[_Key, SeriesState] = OrderedDict()
        self._lock = threading.Lock()

    def read(
        self, session: Session, job_id: str, epoch: int, names: list[str], max_points: int
    ) -> dict[str, Columns]:
        """(steps, values, points stored) of each named series, the points server.db.series
        .read_series answers; the kept ones brought up to date."""
        out: dict[str, Columns] = {}
        kept: list[tuple[str, SeriesState]] = []
        for name in names:
            key = (job_id, epoch, name, max_points)
            with self._lock:
                state = self._states.get(key)
                if state is not None:
                    self._states.move_to_end(key)
            if state is None:  # a cold start reads the database's aggregate
                state = _start(session, job_id, name, max_points)
                # Answered before it is kept: columns() updates the state's kept answer, so
                # once another poll can find the state it runs only under the state's lock.
                out[name] = (*state.columns(), state.count)
                self._keep(key, state)
            else:
                kept.append((name, state))
        # Each state's lock over its read and its update, taken in name order (no deadlock
        # between two polls): two polls at once must not both add the same new points.
        with contextlib.ExitStack() as held:
            for _, state in kept:
                held.enter_context(state.lock)
            new = points_after_each(session, job_id, {n: s.last_step for n, s in kept})
            for name, state in kept:
                state.add(new[name])
                out[name] = (*state.columns(), state.count)
        return out

    def _keep(self, key: _Key, state: SeriesState) -> None:
        with self._lock:
            self._states[key] = state
            while len(self._states) > self.max_series:
                self._states.popitem(last=False)
