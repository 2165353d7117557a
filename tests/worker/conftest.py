"""Worker fixtures: the server tests' databases and keys, plus small specs that train in a
few seconds on CPU."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from server.config import Settings
from tests.server.conftest import (  # noqa: F401  (fixtures used by these tests)
    PAIRS,
    Api,
    admin,
    alice,
    bob,
    client,
    keys,
    postgres,
    postgres_template,
    queue,
    sqlite_template,
)


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """SQLite only: these tests train for real, the API tests cover both databases."""
    path = tmp_path / "gro.db"
    shutil.copy(request.getfixturevalue("sqlite_template"), path)
    return f"sqlite:///{path}"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        environment="test",
        secret_key="test-secret-0123456789",
        database_url=database_url,
        storage_dir=tmp_path / "storage",
        heartbeat_s=0.5,
        heartbeat_timeout_s=5,
        requeue_after_s=2,
    )


def tiny_dpo(dataset: str, **train: Any) -> dict[str, Any]:
    """8 steps of DPO on tiny-llama: a checkpoint every 2 steps, the last 2 kept."""
    return {
        "model": "builtin:tiny-llama",
        "method": "dpo",
        "data": {"train": dataset},
        "train": {"steps": 8, "batch_size": 4, "lr": 1e-3, "warmup_steps": 0, **train},
        "eval": {"every": 0},
        "checkpoint": {"every": 2, "keep": 2},
    }
