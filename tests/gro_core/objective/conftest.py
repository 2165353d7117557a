"""The `trl` fixture: TRL's loss code (tests/gro_core/objective/trl_calls.py). Without TRL
(the `bench` extra, which scripts/test installs) its tests skip, except under
GRO_REQUIRE_SERVICES=1, where they fail."""

from __future__ import annotations

from types import ModuleType

import pytest

from tests.processes import missing


@pytest.fixture(scope="session")
def trl() -> ModuleType:
    try:
        from tests.gro_core.objective import trl_calls
    except ImportError as exc:
        missing(f"TRL, the bench extra ({exc})")
        raise
    return trl_calls
