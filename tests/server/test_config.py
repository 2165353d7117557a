from __future__ import annotations

import pytest
from pydantic import ValidationError

from server.config import DEFAULT_SECRET, Settings


def test_default_secret_refused_outside_development():
    with pytest.raises(ValidationError, match="GRO_SECRET_KEY"):
        Settings(environment="production")
    assert Settings(environment="production", secret_key="s3cret-long").secret_key == "s3cret-long"


def test_default_secret_allowed_in_development():
    assert Settings(environment="development").secret_key == DEFAULT_SECRET


def test_settings_read_gro_prefixed_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GRO_DATABASE_URL", "postgresql://u@db/gro")
    monkeypatch.setenv("GRO_MAX_UPLOAD_BYTES", "1234")
    monkeypatch.setenv("GRO_CORS_ORIGINS", '["http://localhost:8501"]')
    settings = Settings()
    assert settings.database_url == "postgresql://u@db/gro"
    assert settings.max_upload_bytes == 1234
    assert settings.cors_origins == ["http://localhost:8501"]
