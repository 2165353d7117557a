"""The server's `gro` verbs: keys and migrations on its database."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from gro_core.cli import main
from server.config import Settings, get_settings


def test_keys_create_prints_a_working_key(
    settings: Settings, client: TestClient, monkeypatch, capsys: pytest.CaptureFixture
):
    monkeypatch.setenv("GRO_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    try:
        assert main(["keys", "create", "--owner", "carol"]) == 0
    finally:
        get_settings.cache_clear()
    key = capsys.readouterr().out.strip()
    assert key.startswith("gro-")
    assert client.get("/v1/jobs", headers={"Authorization": f"Bearer {key}"}).status_code == 200
