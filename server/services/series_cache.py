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
A refresh reads the points past the last step seen. The state starts from the database's own
aggregate (server.db.series, buckets of the same alignment) and is keyed by the job's
metrics_epoch, which every delete and every write over existing points bumps (a resumed
attempt forgetting the points past its checkpoint, a replayed write)."""

from __future__ import annotations

import contextlib
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


def _lowest(a: Point, b: Point) -> Point:
    """The lower point; a tie goes to the earlier step (as the database's ORDER BY value, step)."""
    return min(a, b, key=lambda p: (p[1], p[0]))


def _highest(a: Point, b: Point) -> Point:
    return min(a, b, key=lambda p: (-p[1], p[0]))


@dataclass
class SeriesState:
    """One series as downsampled so far (module docstring)."""

    max_points: int
    count: int = 0
    last_step: int = -1  # every point at or before it has been read
    raw: list[Point] | None = field(default_factory=list)  # None once bucketed
    width: int = 1
    buckets: dict[int, tuple[Point, Point]] = field(default_factory=dict)
    first: Point | None = None
    last: Point | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

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
        for point in points:
            self._put(point[0] // self.width, point, point)
        self._fit()

    def _put(self, index: int, low: Point, high: Point) -> None:
        if low[1] is None or high[1] is None:  # a null is never an extreme
            return
        held = self.buckets.get(index)
        if held is not None:
            low, high = _lowest(held[0], low), _highest(held[1], high)
        self.buckets[index] = (low, high)

    def _fit(self) -> None:
        """Double the width until the buckets from the first step to the last fit."""
        assert self.first is not None and self.last is not None
        while self.last[0] // self.width - self.first[0] // self.width + 1 > self.max_buckets:
            merged, self.buckets = self.buckets, {}
            self.width *= 2
            for index, (low, high) in merged.items():
                self._put(index // 2, low, high)

    def points(self) -> list[Point]:
        if self.raw is not None:
            return list(self.raw)
        kept = {p[0]: p[1] for pair in self.buckets.values() for p in pair}
        for end in (self.first, self.last):
            if end is not None:
                kept[end[0]] = end[1]
        return sorted(kept.items())


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
    for step, value in extremes:
        state._put(step // state.width, (step, value), (step, value))
    return state


class SeriesCache:
    """States by (job, metrics epoch, name, max_points), least recently used first out."""

    def __init__(self, max_series: int = 20_000) -> None:
        self.max_series = max_series
        self._states: OrderedDict[_Key, SeriesState] = OrderedDict()
        self._lock = threading.Lock()

    def read(
        self, session: Session, job_id: str, epoch: int, names: list[str], max_points: int
    ) -> dict[str, tuple[list[Point], int]]:
        """(points in step order, points stored) of each named series, as
        server.db.series.read_series answers; the kept ones brought up to date."""
        out: dict[str, tuple[list[Point], int]] = {}
        kept: list[tuple[str, SeriesState]] = []
        for name in names:
            key = (job_id, epoch, name, max_points)
            with self._lock:
                state = self._states.get(key)
                if state is not None:
                    self._states.move_to_end(key)
            if state is None:  # a cold start reads the database's aggregate
                state = _start(session, job_id, name, max_points)
                self._keep(key, state)
                out[name] = state.points(), state.count
            else:
                kept.append((name, state))
        # Each state's lock over its read and its update, taken in name order (no deadlock
        # between two polls): two polls at once must not both add the same new points.
        with contextlib.ExitStack() as held:
            for _, state in kept:
                held.enter_context(state.lock)
            after = {name: state.last_step for name, state in kept}
            for (name, state), new in zip(
                kept, points_after_each(session, job_id, after).values(), strict=True
            ):
                state.add(new)
                out[name] = state.points(), state.count
        return out

    def _keep(self, key: _Key, state: SeriesState) -> None:
        with self._lock:
            self._states[key] = state
            while len(self._states) > self.max_series:
                self._states.popitem(last=False)
