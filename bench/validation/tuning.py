"""Fair tuning: each method's point (lr, and β where it has one) chosen on its grid from runs on
the tuning seeds only, by one stated rule.

The rule: the point with the highest mean final held-out reward over the tuning seeds that
succeeded wins; a tie goes to the lower mean KL to the warm-up (the point that moved less for
the same reward), then to the earlier point in grid order. A point with no successful run
cannot win; a method none of whose points succeeded has no choice, and its reported runs are
not submitted (the report says so).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel


class PointResult(BaseModel):
    """One grid point's tuning runs, summarised."""

    point: dict[str, Any]
    rewards: list[float]
    kls: list[float]
    failed: int

    @property
    def reward(self) -> float | None:
        return sum(self.rewards) / len(self.rewards) if self.rewards else None

    @property
    def kl(self) -> float:
        return sum(self.kls) / len(self.kls) if self.kls else float("inf")


class Choice(BaseModel):
    method: str
    point: dict[str, Any] | None
    """The winner; None when no point had a successful run."""
    grid: list[PointResult]


def key(point: dict[str, Any]) -> str:
    """A point as text, to group runs by it (method_args is a dict)."""
    return json.dumps(point, sort_keys=True)


def summarize_points(
    points: Sequence[dict[str, Any]], runs: Sequence[dict[str, Any]]
) -> list[PointResult]:
    """Per grid point (in grid order) its runs' final rewards and KLs; runs carry `point`,
    `status` and `final` (the evaluation's eval/reward and eval/kl_ref)."""
    out = []
    for point in points:
        mine = [r for r in runs if key(r["point"]) == key(point)]
        done = [r for r in mine if r["status"] == "succeeded" and "eval/reward" in r["final"]]
        out.append(
            PointResult(
                point=point,
                rewards=[float(r["final"]["eval/reward"]) for r in done],
                kls=[float(r["final"]["eval/kl_ref"]) for r in done if "eval/kl_ref" in r["final"]],
                failed=len(mine) - len(done),
            )
        )
    return out


def choose(method: str, points: Sequence[dict[str, Any]], runs: Sequence[dict[str, Any]]) -> Choice:
    """The rule of this module's docstring, applied to one method's tuning runs."""
    grid = summarize_points(points, runs)
    ranked = [(-p.reward, p.kl, index, p) for index, p in enumerate(grid) if p.reward is not None]
    best = min(ranked, key=lambda t: t[:3])[3].point if ranked else None
    return Choice(method=method, point=best, grid=grid)
