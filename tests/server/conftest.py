"""Server test fixtures: a migrated database per test (SQLite and PostgreSQL), an app with a
recording queue, and API keys for two owners and an admin."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from server.config import Settings
from server.db.migrate import upgrade
from server.db.owners import create_key
from server.db.session import dispose_engine, session_scope
from server.main import create_app
from server.queue import RecordingQueue
from tests.processes import Postgres, start_postgres

TEMPLATE_DB = "gro_template"


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    server = start_postgres()
    yield server
    server.stop()


def admin_sql(server: Postgres, statement: str) -> None:
    with psycopg.connect(server.url().replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(statement)


@pytest.fixture(scope="session")
def postgres_template(postgres: Postgres) -> Postgres:
    """A migrated database every test copies (CREATE DATABASE ... TEMPLATE is fast)."""
    admin_sql(postgres, f"CREATE DATABASE {TEMPLATE_DB}")
    upgrade(postgres.url(TEMPLATE_DB))
    dispose_engine(postgres.url(TEMPLATE_DB))  # a template must have no open connection
    return postgres


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    upgrade(f"sqlite:///{path}")
    dispose_engine(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A freshly migrated, empty database of each backend, private to the test."""
    if request.param == "sqlite":
        path = tmp_path / "gro.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
        yield url
        dispose_engine(url)
        return
    server: Postgres = request.getfixturevalue("postgres_template")
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin_sql(server, f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}")
    yield server.url(name)
    dispose_engine(server.url(name))
    admin_sql(server, f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        environment="test",
        secret_key="test-secret-0123456789",
        database_url=database_url,
        storage_dir=tmp_path / "storage",
        max_upload_bytes=64 * 1024,
    )


@pytest.fixture
def queue() -> RecordingQueue:
    return RecordingQueue()


@pytest.fixture
def client(settings: Settings, queue: RecordingQueue) -> Iterator[TestClient]:
    with TestClient(create_app(settings, queue)) as test_client:
        yield test_client


@pytest.fixture
def keys(settings: Settings) -> dict[str, str]:
    """API keys of owners alice and bob, and of an admin."""
    with session_scope(settings.database_url) as session:
        return {
            "alice": create_key(session, "alice"),
            "bob": create_key(session, "bob"),
            "admin": create_key(session, "root", admin=True),
        }


class Api:
    """The test client acting as one owner."""

    def __init__(self, client: TestClient, key: str) -> None:
        self.client, self.headers = client, {"Authorization": f"Bearer {key}"}

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)

    def upload(self, rows: list[dict] | bytes, name: str = "data.jsonl", path: str = "") -> Any:
        body = rows if isinstance(rows, bytes) else jsonl(rows)
        return self.post(f"/v1/datasets{path}", files={"file": (name, body)})

    def dataset(self, rows: list[dict]) -> str:
        response = self.upload(rows)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def submit(self, spec: dict[str, Any]) -> Any:
        return self.post("/v1/jobs", json=spec)

    def job(self, spec: dict[str, Any]) -> dict[str, Any]:
        response = self.submit(spec)
        assert response.status_code == 201, response.text
        return response.json()


def jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


@pytest.fixture
def alice(client: TestClient, keys: dict[str, str]) -> Api:
    return Api(client, keys["alice"])


@pytest.fixture
def bob(client: TestClient, keys: dict[str, str]) -> Api:
    return Api(client, keys["bob"])


@pytest.fixture
def admin(client: TestClient, keys: dict[str, str]) -> Api:
    return Api(client, keys["admin"])


PAIRS = [{"prompt": f"q{i}", "chosen": "good", "rejected": "bad"} for i in range(8)]
PROMPTS = [{"prompt": f"{i}+{i}=", "answer": str(2 * i)} for i in range(8)]


def dpo_spec(dataset: str, **train: Any) -> dict[str, Any]:
    return {
        "model": "builtin:tiny-llama",
        "method": "dpo",
        "data": {"train": dataset},
        "train": {"steps": 5, **train},
    }
